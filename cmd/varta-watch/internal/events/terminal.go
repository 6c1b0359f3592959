package events

import (
	"strconv"
	"time"

	"github.com/varta-go/varta/pkg/vlp"
)

// appendHuman appends ev as a line for a person at a terminal (Options.
// Terminal): local wall-clock time, then aligned columns, the terminal
// nonce spelled out. The file format is never this one.
//
//	20:15:03.120  beat      pid 4242     nonce 7          ok        payload 0
//	20:15:05.120  beat      pid 4242     terminal         critical  payload 0
//	20:15:06.620  stall     pid 4242     nonce 7          stall
//	20:15:07.120  decode    -                                       BadCrc { … }
func (w *Writer) appendHuman(b []byte, ev *Event) []byte {
	var wall time.Time
	if w.opts.Wall != nil {
		wall = w.opts.Wall(ev.Ns)
	} else {
		wall = time.Now()
	}
	return appendHumanLine(b, ev, wall.Local())
}

func appendHumanLine(b []byte, ev *Event, wall time.Time) []byte {
	b = wall.AppendFormat(b, "15:04:05.000")
	b = append(b, "  "...)
	start := len(b)
	b = pad(append(b, kindNames[ev.Kind]...), start, 10)

	start = len(b)
	if ev.Pid != 0 {
		b = strconv.AppendUint(append(b, "pid "...), uint64(ev.Pid), 10)
	} else {
		b = append(b, '-')
	}
	b = pad(b, start, 13)

	start = len(b)
	switch ev.Kind {
	case KindBeat, KindStall:
		if ev.Nonce == vlp.NonceTerminal {
			b = append(b, "terminal"...)
		} else {
			b = strconv.AppendUint(append(b, "nonce "...), ev.Nonce, 10)
		}
	}
	b = pad(b, start, 17)

	start = len(b)
	switch ev.Kind {
	case KindBeat:
		b = append(b, ev.Status.String()...)
	case KindStall:
		b = append(b, "stall"...)
	}
	b = pad(b, start, 10)

	switch ev.Kind {
	case KindBeat:
		b = strconv.AppendUint(append(b, "payload "...), uint64(ev.Payload), 10)
	case KindDecode, KindIO, KindCtrunc, KindMismatch, KindGaveUp:
		b = appendText(b, ev.Text)
	}
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	return append(b, '\n')
}

// pad fills the column that started at start with spaces up to width, and
// always leaves at least one space after it.
func pad(b []byte, start, width int) []byte {
	n := len(b) - start
	if n >= width {
		return append(b, ' ')
	}
	for ; n < width; n++ {
		b = append(b, ' ')
	}
	return b
}
