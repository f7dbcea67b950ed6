"""Plate OCR: engines that read plate crops (rapidocr's recognizer, a trained CRNN, PaddleOCR).

`engines.OcrEngines` picks and loads an engine by name; `Predictor.read_plates` (predict.py)
is the interface the GUI and the CLI call.
"""
