package metrics

import (
	"bytes"
	"io"
	"math"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// familyStreamer writes per-pid family k of a snapshot in one exposition
// format, byte for byte as the format's expfmt encoder writes the
// materialised family (perPidFamilies), without building it.
type familyStreamer interface {
	// write writes the family to w through buf, which it returns for
	// reuse.
	write(w io.Writer, rows []pidRow, k int, buf []byte) ([]byte, error)
}

// streamProbe is the one-row table a streamer is checked against the real
// encoder with: the longest pid and a value that is neither 0 nor 1 (the
// text encoder's special cases).
var streamProbe = []pidRow{{key: pidSortKey(math.MaxUint32), pid: math.MaxUint32, beats: 3, stalls: 3, status: 3, payload: 3}}

// newStreamers returns a streamer per per-pid family for format, or false
// when format is not one the streamers know (the protobuf text formats) or
// when a streamer's output for streamProbe differs from the expfmt
// encoder's for the same family; the caller then materialises the
// families. The check runs per scrape (four one-series encodes), so a
// change in the encoders can never change the exposition.
func newStreamers(format expfmt.Format) ([len(perPidFams)]familyStreamer, bool) {
	var out [len(perPidFams)]familyStreamer
	if ft := format.FormatType(); ft != expfmt.TypeTextPlain && ft != expfmt.TypeProtoDelim {
		return out, false
	}
	probe := perPidFamilies(streamProbe)
	for k, f := range perPidFams {
		var want bytes.Buffer
		if err := expfmt.NewEncoder(&want, format).Encode(probe[k]); err != nil {
			return out, false
		}
		var s familyStreamer
		switch format.FormatType() {
		case expfmt.TypeTextPlain:
			s = newTextStreamer(f, want.Bytes())
		case expfmt.TypeProtoDelim:
			s = newProtoStreamer(f)
		}
		if s == nil {
			return out, false
		}
		var got bytes.Buffer
		if _, err := s.write(&got, streamProbe, k, nil); err != nil || !bytes.Equal(got.Bytes(), want.Bytes()) {
			return out, false
		}
		out[k] = s
	}
	return out, true
}

// flush writes buf to w once it holds streamChunk bytes or more, or
// whenever final is set, and returns it emptied.
func flush(w io.Writer, buf []byte, final bool) ([]byte, error) {
	if len(buf) == 0 || (!final && len(buf) < streamChunk) {
		return buf, nil
	}
	_, err := w.Write(buf)
	return buf[:0], err
}

// textStreamer writes the text format: the HELP and TYPE lines, then per
// pid `<name>{pid="<pid>"} <value>`.
type textStreamer struct {
	header, prefix []byte
}

// newTextStreamer takes the header from probe, the encoder's output for
// the one-row family (everything up to its last line).
func newTextStreamer(f familyMeta, probe []byte) familyStreamer {
	nl := bytes.LastIndexByte(probe[:max(0, len(probe)-1)], '\n')
	if nl < 0 {
		return nil
	}
	return textStreamer{header: probe[:nl+1], prefix: []byte(f.name + `{pid="`)}
}

// write formats values as the text encoder does: strconv 'g', shortest
// (its special cases 0 and 1 give the same bytes; -1, NaN and ±Inf cannot
// occur for unsigned counts).
func (t textStreamer) write(w io.Writer, rows []pidRow, k int, buf []byte) ([]byte, error) {
	var err error
	buf = append(buf[:0], t.header...)
	for i := range rows {
		buf = append(buf, t.prefix...)
		buf = strconv.AppendUint(buf, uint64(rows[i].pid), 10)
		buf = append(buf, `"} `...)
		buf = strconv.AppendFloat(buf, rows[i].value(k), 'g', -1, 64)
		buf = append(buf, '\n')
		if buf, err = flush(w, buf, false); err != nil {
			return buf, err
		}
	}
	return flush(w, buf, true)
}

// protoStreamer writes the length-delimited protobuf format: one
// MetricFamily message (name, help, type, then one Metric per pid with
// its label and a counter or gauge value), preceded by its size as a
// varint. The size is summed over the rows before anything is written.
type protoStreamer struct {
	header     []byte           // fields 1-3 of the MetricFamily
	valueField protowire.Number // Metric.counter (3) or Metric.gauge (2)
}

// Field numbers of io.prometheus.client.MetricFamily, Metric and
// LabelPair; Counter.value and Gauge.value are both 1.
const (
	pbFamilyMetric protowire.Number = 4
	pbMetricLabel  protowire.Number = 1
	pbMetricGauge  protowire.Number = 2
	pbMetricCount  protowire.Number = 3
	pbLabelName    protowire.Number = 1
	pbLabelValue   protowire.Number = 2
	pbValue        protowire.Number = 1
)

func newProtoStreamer(f familyMeta) familyStreamer {
	header, err := proto.Marshal(f.family(nil))
	if err != nil {
		return nil
	}
	field := pbMetricGauge
	if f.typ == dto.MetricType_COUNTER {
		field = pbMetricCount
	}
	return protoStreamer{header: header, valueField: field}
}

// metricSize is the size of one Metric message for a pid of n digits.
func metricSize(n int) int {
	label := protowire.SizeTag(pbLabelName) + protowire.SizeBytes(len("pid")) +
		protowire.SizeTag(pbLabelValue) + protowire.SizeBytes(n)
	value := protowire.SizeTag(pbValue) + protowire.SizeFixed64()
	return protowire.SizeTag(pbMetricLabel) + protowire.SizeBytes(label) +
		protowire.SizeTag(pbMetricGauge) + protowire.SizeBytes(value)
}

func digits(pid uint32) int {
	n := 1
	for ; pid >= 10; pid /= 10 {
		n++
	}
	return n
}

func (p protoStreamer) write(w io.Writer, rows []pidRow, k int, buf []byte) ([]byte, error) {
	size := len(p.header)
	for i := range rows {
		size += protowire.SizeTag(pbFamilyMetric) + protowire.SizeBytes(metricSize(digits(rows[i].pid)))
	}
	var err error
	buf = protowire.AppendVarint(buf[:0], uint64(size))
	buf = append(buf, p.header...)
	var pid [10]byte
	for i := range rows {
		v := strconv.AppendUint(pid[:0], uint64(rows[i].pid), 10)
		buf = protowire.AppendTag(buf, pbFamilyMetric, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(metricSize(len(v))))
		buf = protowire.AppendTag(buf, pbMetricLabel, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(protowire.SizeTag(pbLabelName)+protowire.SizeBytes(len("pid"))+
			protowire.SizeTag(pbLabelValue)+protowire.SizeBytes(len(v))))
		buf = protowire.AppendTag(buf, pbLabelName, protowire.BytesType)
		buf = protowire.AppendString(buf, "pid")
		buf = protowire.AppendTag(buf, pbLabelValue, protowire.BytesType)
		buf = protowire.AppendBytes(buf, v)
		buf = protowire.AppendTag(buf, p.valueField, protowire.BytesType)
		buf = protowire.AppendVarint(buf, uint64(protowire.SizeTag(pbValue)+protowire.SizeFixed64()))
		buf = protowire.AppendTag(buf, pbValue, protowire.Fixed64Type)
		buf = protowire.AppendFixed64(buf, math.Float64bits(rows[i].value(k)))
		if buf, err = flush(w, buf, false); err != nil {
			return buf, err
		}
	}
	return flush(w, buf, true)
}
