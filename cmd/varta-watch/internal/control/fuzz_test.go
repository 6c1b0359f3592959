package control

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/varta-go/varta/cmd/varta-watch/internal/snooze"
	"github.com/varta-go/varta/pkg/audit"
)

// FuzzSnoozeRequest: a request body from a control client never panics
// the parser, and whatever it accepts can be stored and written to the
// audit log as a control record that verifies. Seeds live in
// testdata/fuzz/FuzzSnoozeRequest.
func FuzzSnoozeRequest(f *testing.F) {
	f.Add([]byte(`{"target":"web","for":"30m","reason":"deploy 4711"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req SnoozeRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		e, err := ParseSnoozeRequest(req, 1001, testNow)
		if err != nil {
			return
		}
		store, _, _ := snooze.Open("", func() time.Time { return testNow })
		if _, err := store.Put(e); err != nil {
			t.Fatalf("accepted request %+v not storable: %v", req, err)
		}
		rec := audit.ControlRecord{UID: 1001, Action: audit.ControlSnooze, Target: e.Target, Forever: e.Forever, Reason: e.Reason}
		if !e.Forever {
			rec.UntilMs = e.Until.UnixMilli()
		}
		if err := audit.Validate(audit.Record{Kind: audit.KindControl, Control: rec}); err != nil {
			t.Fatalf("accepted request %+v: %v", req, err)
		}
	})
}
