#!/usr/bin/env bash
# Writes screenshots of the main views into docs/screenshots/, from a real window in Xvfb.
#   bash docs/screenshots/take.sh            (needs: xvfb xdotool imagemagick; apt-get installs them)
# The demo project is generated under $WORKDIR/projects (default /home/demo/workbench).
# A project opens on the reviewer; Ctrl+2 shows the overview.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=docs/screenshots
workdir=${WORKDIR:-/home/demo/workbench}
python=${PYTHON:-.venv/bin/python}
for tool in Xvfb xdotool import; do
  command -v "$tool" >/dev/null || { echo "take.sh: $tool is missing (apt-get install -y xvfb xauth xdotool imagemagick libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0)" >&2; exit 1; }
done
mkdir -p "$workdir/projects"
# Start from a fresh demo, so the reviewer opens on the same group every time.
if [ -f "$workdir/projects/demo/demo.json" ]; then rm -rf "$workdir/projects/demo"; fi

shoot() {  # shoot SIZE NAME STEP...   (a step: an xdotool key name, or hold:KEY to shoot while KEY is held)
  local size=$1 name=$2; shift 2
  local disp=:$((90 + RANDOM % 400))
  Xvfb "$disp" -screen 0 "${size}x24" -nolisten tcp >/dev/null 2>&1 &
  local xpid=$!
  sleep 1
  DISPLAY=$disp QT_QPA_PLATFORM=xcb "$python" main.py --demo --projects-dir "$workdir/projects" \
    >/dev/null 2>&1 &
  local apid=$!
  for _ in $(seq 40); do
    DISPLAY=$disp xdotool search --name "demo — Workbench" >/dev/null 2>&1 && break
    sleep 0.5
  done
  sleep 2
  local win
  win=$(DISPLAY=$disp xdotool search --name "demo — Workbench" | head -n 1)
  DISPLAY=$disp xdotool windowsize "$win" "${size%x*}" "${size#*x}" windowmove "$win" 0 0
  sleep 1.5  # the reviewer prepares its pictures for the new size and the AI's proposals
  local held=""
  for key in "$@"; do
    if [[ $key == hold:* ]]; then
      held=${key#hold:}
      DISPLAY=$disp xdotool mousemove --window "$win" $(( ${size%x*} * 2 / 5 )) $(( ${size#*x} / 2 ))
      DISPLAY=$disp xdotool keydown --window "$win" "$held"
      sleep 2  # the originals are decoded for the 100% view
    else
      DISPLAY=$disp xdotool key --window "$win" "$key"
      sleep 0.6
    fi
  done
  sleep 1
  DISPLAY=$disp import -window root "$out/$name.png"
  [ -n "$held" ] && DISPLAY=$disp xdotool keyup --window "$win" "$held"
  kill "$apid" 2>/dev/null || true
  wait "$apid" 2>/dev/null || true
  kill "$xpid" 2>/dev/null || true
  echo "wrote $out/$name.png"
}

# The reviewer: the AI's pick framed, its crop drawn, earlier choices marked.
shoot 1920x1080 reviewer-1920x1080 Right
shoot 1280x720 reviewer-1280x720 Right w Left   # a choice staged: image 2 goes to crop/
shoot 1280x720 reviewer-loupe-1280x720 hold:space
shoot 1920x1080 overview-1920x1080 ctrl+2 Right
shoot 1280x720 overview-1280x720 ctrl+2 Right Right
shoot 1280x720 keymap-1280x720 question
