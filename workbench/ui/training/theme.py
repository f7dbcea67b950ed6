"""Style rules of the training and AI performance views (in the window's dark theme).

Applied to the view widget itself, so they reach only its children; cards are QFrames
with the `card` property, and labels change colour through their `state` property.
"""

STYLE = """
QFrame[card="true"] {
    background: #252930;
    border: 1px solid #30353e;
    border-radius: 8px;
}
QFrame[card="true"] QLabel { background: transparent; border: none; }
QFrame#runPanel, QFrame#summaryPanel {
    background: #21252b;
    border: 1px solid #30353e;
    border-radius: 8px;
}
QFrame#runPanel QLabel, QFrame#summaryPanel QLabel { background: transparent; }
QLabel#viewTitle { font-size: 18px; font-weight: bold; color: #ffffff; }
QLabel#viewSummary { color: #9aa3b2; }
QLabel#cardTitle { font-size: 15px; font-weight: bold; color: #ffffff; }
QLabel#cardPurpose { color: #8a93a3; }
QLabel#cardLine, QLabel#resultSamples { color: #c9ced6; }
QLabel#cardLearned { color: #a9c7f0; }
QLabel#cardBadge { border-radius: 9px; padding: 1px 8px; font-weight: bold; }
QLabel#cardBadge[state="champion"] { background: #24472f; color: #8fdcaa; }
QLabel#cardBadge[state="none"] { background: #353a44; color: #b9c0cc; }
QLabel#cardBadge[state="problem"] { background: #4a2f2b; color: #f0b4a6; }
QLabel#cardReadiness[state="ready"] { color: #8fdcaa; }
QLabel#cardReadiness[state="waiting"] { color: #e8c27a; }
QLabel#cardReadiness[state="problem"] { color: #f0b4a6; }
QLabel#runHeadline { font-weight: bold; color: #ffffff; }
QLabel#runTimes { color: #9aa3b2; }
QLabel#runNotice { padding: 6px 8px; border-radius: 5px; }
QLabel#runNotice[state="info"] { background: #263349; color: #cfe0ff; }
QLabel#runNotice[state="problem"] { background: #4a2f2b; color: #ffd9cf; }
QLabel#resultHeader { font-weight: bold; font-size: 14px; }
QLabel#resultHeader[state="promoted"] { color: #8fdcaa; }
QLabel#resultHeader[state="kept"] { color: #e8c27a; }
QLabel#resultHeader[state="failed"] { color: #f0b4a6; }
QLabel#resultHeader[state="cancelled"], QLabel#resultHeader[state="not_ready"] { color: #b9c0cc; }
QLabel#resultMessage { color: #c9ced6; }
QLabel#gridHead { color: #8a93a3; }
QLabel#gridMetric { color: #b9c0cc; }
QLabel#gridNew { color: #ffffff; font-weight: bold; }
QLabel#gridCell { color: #c9ced6; }
QProgressBar {
    background: #15181c; border: 1px solid #3a404a; border-radius: 4px;
    text-align: center; color: #d9dde4; min-height: 16px;
}
QProgressBar::chunk { background: #3d6fb6; border-radius: 3px; }
QPlainTextEdit#trainingLog, QListWidget#mistakeList, QTableWidget#batchTable {
    background: #15181c; border: 1px solid #30353e; border-radius: 6px;
    font-family: monospace; color: #c9ced6;
}
QListWidget#mistakeList, QTableWidget#batchTable { font-family: none; }
QTableWidget#batchTable { gridline-color: #2a2f37; }
QHeaderView::section {
    background: #23272e; color: #9aa3b2; border: none;
    border-bottom: 1px solid #30353e; padding: 4px;
}
QListWidget#mistakeList::item { padding: 2px; }
QScrollBar:vertical { background: #1d2026; width: 10px; margin: 0; }
QScrollBar::handle:vertical { background: #3a404a; border-radius: 4px; min-height: 24px; }
QScrollBar::add-line:vertical, QScrollBar::sub-line:vertical { height: 0; }
QScrollBar:horizontal { background: #1d2026; height: 10px; margin: 0; }
QScrollBar::handle:horizontal { background: #3a404a; border-radius: 4px; min-width: 24px; }
QScrollBar::add-line:horizontal, QScrollBar::sub-line:horizontal { width: 0; }
QTabWidget::pane { border: 1px solid #30353e; border-radius: 6px; top: -1px; }
QTabBar::tab {
    background: #23272e; color: #9aa3b2; padding: 5px 14px;
    border: 1px solid #30353e; border-bottom: none;
    border-top-left-radius: 5px; border-top-right-radius: 5px;
}
QTabBar::tab:selected { background: #2c323b; color: #ffffff; }
QPushButton:disabled { color: #6b7280; background: #2a2f37; border-color: #363c46; }
QPushButton#retrainAll { background: #2f5a96; border-color: #4a7cc4; font-weight: bold; }
QPushButton#retrainAll:hover { background: #3766aa; }
QPushButton#retrainAll:disabled { background: #2a2f37; border-color: #363c46; }
QLabel#curvesCaption { color: #9aa3b2; padding: 2px 4px; }
QScrollArea#resultsPanel { background: #1d2026; border: none; }
QScrollArea#resultsPanel > QWidget#qt_scrollarea_viewport, QWidget#resultList {
    background: #1d2026;
}
"""
