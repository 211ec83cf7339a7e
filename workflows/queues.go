// Package workflows holds Ferry's Temporal workflows. Everything here is
// deterministic: no time.Now, goroutines, map iteration order or I/O; those
// belong in activities.
package workflows

// ControlTaskQueue is the task queue of `ferry worker`: workflows and the
// controller activities (database, notifications, reports, backups).
const ControlTaskQueue = "ferry-control"

// HostTaskQueue is the task queue that the agent of one host polls; the
// host-bound activities of a job run there.
func HostTaskQueue(hostID string) string { return "host-" + hostID }

// Search attributes Ferry registers so that the Temporal UI can filter jobs.
const (
	SearchAttrJobState   = "FerryJobState"
	SearchAttrSourceHost = "FerrySourceHost"
	SearchAttrTargetHost = "FerryTargetHost"
)

// SearchAttribute is a custom search attribute and its Temporal type.
type SearchAttribute struct {
	Name string
	Type string // Keyword, Text, Int, Double, Bool, Datetime, KeywordList
}

// SearchAttributes lists every custom search attribute Ferry uses; the dev
// server and test harness register them at start.
var SearchAttributes = []SearchAttribute{
	{SearchAttrJobState, "Keyword"},
	{SearchAttrSourceHost, "Keyword"},
	{SearchAttrTargetHost, "Keyword"},
}
