#!/usr/bin/env bash
# call/media/clip/make.sh makes rtckit's default test clip, the media that
# `rtckit call` sends when no file is given. It writes, next to this script:
#
#   clip.ivf  VP8 (profile 0, yuv420p), 320x240, 30 fps, 90 frames (3 s), a
#             keyframe every 30 frames (1 s), no alt-ref (invisible) frames,
#             so every IVF frame is one displayed picture. The picture is
#             ffmpeg's testsrc2 pattern (moving, with its own clock) and a
#             large "frame NN" counter, so a viewer sees motion and can tell
#             frames apart.
#   clip.ogg  Opus, 48 kHz mono, 20 ms packets, a 440 Hz tone. The tone is
#             shortened by the encoder's 312-sample pre-skip so that the
#             stream is exactly 150 packets, 3 s, like the video: looped
#             together, audio and video stay in step.
#
# The files are checked in and embedded with go:embed; run this script only
# to change the clip, then run the call/media tests. Encoding is
# single-threaded and bit-exact, so a rerun with the same ffmpeg gives the
# same bytes.
#
# Needs: ffmpeg with libvpx, libopus and drawtext, and the DejaVu Sans Mono
# Bold font (Debian: ffmpeg fonts-dejavu-core).
#
# Usage: call/media/clip/make.sh
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

FONT="${FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf}"
[[ -r $FONT ]] || {
	echo "make.sh: font $FONT not found (set FONT=...)" >&2
	exit 1
}

SECONDS_LONG=3
FPS=30

ffmpeg -hide_banner -v error -y \
	-f lavfi -i "testsrc2=size=320x240:rate=${FPS}:duration=${SECONDS_LONG}" \
	-vf "drawtext=fontfile=${FONT}:text='frame %{eif\:n\:d\:2}':fontsize=28:fontcolor=white:box=1:boxcolor=black@0.8:boxborderw=6:x=(w-tw)/2:y=h-th-20,format=yuv420p" \
	-c:v libvpx -profile:v 0 -threads 1 -deadline good -cpu-used 2 \
	-b:v 200k -minrate 100k -maxrate 300k \
	-g "$FPS" -keyint_min "$FPS" -auto-alt-ref 0 -lag-in-frames 0 -error-resilient 1 \
	-fflags +bitexact -flags:v +bitexact \
	-f ivf clip.ivf

ffmpeg -hide_banner -v error -y \
	-f lavfi -i "sine=frequency=440:sample_rate=48000,atrim=end_sample=$((SECONDS_LONG * 48000 - 312))" \
	-c:a libopus -ac 1 -b:a 32k -frame_duration 20 -application audio \
	-fflags +bitexact -flags:a +bitexact \
	-f ogg clip.ogg

ls -l clip.ivf clip.ogg
