package state

// Reseal replaces the end line of data (which must not have one) with a
// correct one for n records: tests use it to reach rules behind the
// checksum.
func Reseal(data []byte, n int) []byte {
	e := &encoder{buf: append([]byte(nil), data...), n: n}
	return e.finish()
}
