package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"
)

// textHandler writes "varta-watch: <message> key=value ..." lines. A value
// that is empty or holds a space, '=', '"' or anything not printable
// (a newline, bad UTF-8) is written as a Go-quoted string, so that every
// line parses back into the same keys and values and no value — a
// process's command name, a recovery program's output, an error text —
// can start a line of its own.
type textHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	attrs []slog.Attr
}

func newTextHandler(w io.Writer) *textHandler { return &textHandler{mu: &sync.Mutex{}, w: w} }

func (h *textHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *textHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(Name)
	b.WriteString(": ")
	if r.Level >= slog.LevelWarn {
		b.WriteString(strings.ToLower(r.Level.String()))
		b.WriteString(": ")
	}
	b.WriteString(r.Message)
	write := func(a slog.Attr) bool {
		b.WriteByte(' ')
		b.WriteString(a.Key)
		b.WriteByte('=')
		b.WriteString(logValue(a.Value))
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	r.Attrs(write)
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *textHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &textHandler{mu: h.mu, w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *textHandler) WithGroup(string) slog.Handler { return h }

// logValue is v as the text handler writes it: quoted when needsQuote.
func logValue(v slog.Value) string {
	v = v.Resolve()
	var s string
	if v.Kind() == slog.KindString {
		s = v.String()
	} else {
		s = fmt.Sprint(v.Any())
	}
	if needsQuote(s) {
		return strconv.Quote(s)
	}
	return s
}

func needsQuote(s string) bool {
	if s == "" {
		return true
	}
	for i, r := range s {
		if r == utf8.RuneError {
			if _, n := utf8.DecodeRuneInString(s[i:]); n <= 1 {
				return true
			}
		}
		if r == ' ' || r == '=' || r == '"' || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}
