package metrics

import "github.com/varta-go/varta/cmd/varta-watch/internal/tracker"

// FromTracker adapts the tracker to Source. Its EachAgent reads the slots'
// atomic fields without the tracker lock, so a scrape never waits for, or
// delays, ingest.
func FromTracker(tr *tracker.Tracker) Source { return trackerSource{tr} }

type trackerSource struct{ tr *tracker.Tracker }

func (s trackerSource) EachAgent(fn func(AgentView)) {
	s.tr.EachAgent(func(v tracker.AgentView) { fn(AgentView(v)) })
}
func (s trackerSource) Tracked() int  { return s.tr.Tracked() }
func (s trackerSource) Capacity() int { return s.tr.Capacity() }
