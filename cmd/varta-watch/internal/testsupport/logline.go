package testsupport

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseLogLine parses one line of varta-watch's text log format,
// "varta-watch: [warn: |error: ]<message> key=value ...", into its level
// ("info" when none is written), message and attributes; a quoted value is
// unquoted. It fails on a line that does not have that form, which is
// how the tests prove that every value with a space, a quote, '=' or a
// control byte was quoted.
func ParseLogLine(line string) (level, msg string, attrs map[string]string, err error) {
	rest, ok := strings.CutPrefix(line, "varta-watch: ")
	if !ok {
		return "", "", nil, fmt.Errorf("log line %q: no \"varta-watch: \" prefix", line)
	}
	level = "info"
	for _, l := range []string{"warn", "error"} {
		if r, ok := strings.CutPrefix(rest, l+": "); ok {
			level, rest = l, r
			break
		}
	}
	// The message runs up to the space before the first "key=".
	msg = rest
	if i := strings.IndexByte(rest, '='); i >= 0 {
		j := strings.LastIndexByte(rest[:i], ' ')
		if j < 0 {
			return "", "", nil, fmt.Errorf("log line %q: no message before the first attribute", line)
		}
		msg, rest = rest[:j], rest[j:]
	} else {
		rest = ""
	}
	attrs = map[string]string{}
	for rest != "" {
		if rest[0] != ' ' {
			return "", "", nil, fmt.Errorf("log line %q: no space before %q", line, rest)
		}
		key, after, ok := strings.Cut(rest[1:], "=")
		if !ok || key == "" || strings.ContainsAny(key, " \"") {
			return "", "", nil, fmt.Errorf("log line %q: bad attribute at %q", line, rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return "", "", nil, fmt.Errorf("log line %q: value of %s: %v", line, key, err)
			}
			val, _ = strconv.Unquote(q)
			rest = after[len(q):]
		} else {
			end := strings.IndexByte(after, ' ')
			if end < 0 {
				end = len(after)
			}
			val, rest = after[:end], after[end:]
			if strings.ContainsAny(val, `="`) {
				return "", "", nil, fmt.Errorf("log line %q: unquoted value of %s holds '=' or '\"'", line, key)
			}
		}
		if _, dup := attrs[key]; dup {
			return "", "", nil, fmt.Errorf("log line %q: attribute %s twice", line, key)
		}
		attrs[key] = val
	}
	return level, msg, attrs, nil
}
