package metrics

import (
	"net/http"
	"strings"
)

// This file negotiates the response's Content-Encoding exactly as promhttp
// does. promhttp keeps its parser in an internal package (a copy of
// github.com/golang/gddo/httputil, BSD-style licence, Copyright 2013 The
// Go Authors), so the same few functions are reproduced here: a client
// must get the same encoding from this handler as from promhttp for every
// Accept-Encoding header.

// negotiateContentEncoding returns the best offered content encoding for
// the request's Accept-Encoding header: "identity" when the header is
// absent or names none of the offers, "" when the best match has q=0.
// Offers are tried in order; a later offer wins only with a higher q.
func negotiateContentEncoding(r *http.Request, offers []string) string {
	bestOffer := "identity"
	bestQ := -1.0
	specs := parseAccept(r.Header, "Accept-Encoding")
	for _, offer := range offers {
		for _, spec := range specs {
			if spec.q > bestQ && (spec.value == "*" || spec.value == offer) {
				bestQ = spec.q
				bestOffer = offer
			}
		}
	}
	if bestQ == 0 {
		bestOffer = ""
	}
	return bestOffer
}

// octetTypes classifies bytes as RFC 2616 token characters and spaces.
var octetTypes = func() (t [256]octetType) {
	for c := range 256 {
		isCtl := c <= 31 || c == 127
		isChar := c <= 127
		isSeparator := strings.ContainsRune(" \t\"(),/:;<=>?@[]\\{}", rune(c))
		if strings.ContainsRune(" \t\r\n", rune(c)) {
			t[c] |= isSpace
		}
		if isChar && !isCtl && !isSeparator {
			t[c] |= isToken
		}
	}
	return t
}()

type octetType byte

const (
	isToken octetType = 1 << iota
	isSpace
)

// acceptSpec is one element of an Accept* header.
type acceptSpec struct {
	value string
	q     float64
}

// parseAccept parses every header[key] line; an element it cannot parse
// ends the parsing of its line.
func parseAccept(header http.Header, key string) (specs []acceptSpec) {
loop:
	for _, s := range header[key] {
		for {
			var spec acceptSpec
			spec.value, s = expectTokenSlash(s)
			if spec.value == "" {
				continue loop
			}
			spec.q = 1.0
			s = skipSpace(s)
			if strings.HasPrefix(s, ";") {
				s = skipSpace(s[1:])
				if !strings.HasPrefix(s, "q=") {
					continue loop
				}
				spec.q, s = expectQuality(s[2:])
				if spec.q < 0.0 {
					continue loop
				}
			}
			specs = append(specs, spec)
			s = skipSpace(s)
			if !strings.HasPrefix(s, ",") {
				continue loop
			}
			s = skipSpace(s[1:])
		}
	}
	return specs
}

func skipSpace(s string) string {
	i := 0
	for ; i < len(s); i++ {
		if octetTypes[s[i]]&isSpace == 0 {
			break
		}
	}
	return s[i:]
}

func expectTokenSlash(s string) (token, rest string) {
	i := 0
	for ; i < len(s); i++ {
		b := s[i]
		if (octetTypes[b]&isToken == 0) && b != '/' {
			break
		}
	}
	return s[:i], s[i:]
}

func expectQuality(s string) (q float64, rest string) {
	switch {
	case len(s) == 0:
		return -1, ""
	case s[0] == '0':
		q = 0
	case s[0] == '1':
		q = 1
	default:
		return -1, ""
	}
	s = s[1:]
	if !strings.HasPrefix(s, ".") {
		return q, s
	}
	s = s[1:]
	i, n, d := 0, 0, 1
	for ; i < len(s); i++ {
		b := s[i]
		if b < '0' || b > '9' {
			break
		}
		n = n*10 + int(b) - '0'
		d *= 10
	}
	return q + float64(n)/float64(d), s[i:]
}
