package workflows

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ferry-migrate/ferry"
)

func TestLegalTable(t *testing.T) {
	for _, a := range Actions() {
		for _, s := range ferry.JobStates() {
			err := Legal(a, s)
			if slices.Contains(legalIn[a], s) {
				if err != nil {
					t.Errorf("%s in %s: %v", a, s, err)
				}
				continue
			}
			want := "cannot " + a + ": job is " + string(s)
			if err == nil || !strings.Contains(err.Error(), want) || ferry.ErrorCode(err) != ferry.ECONFLICT {
				t.Errorf("%s in %s: got %v, want %q", a, s, err, want)
			}
		}
	}
	if Legal("explode", ferry.JobSyncing) == nil {
		t.Error("unknown action accepted")
	}
}

// TestEveryIllegalActionIsRejected parks a real workflow in each state a user
// can act in and sends every action that is illegal there: each Update is
// rejected by its validator with a reason naming the state, and the job does
// not move.
func TestEveryIllegalActionIsRejected(t *testing.T) {
	cases := []struct {
		state ferry.JobState
		setup func(h *harness, spec *JobSpec)
		at    time.Duration
		end   string // action that ends the run ("" lets it finish)
	}{
		{ferry.JobPending, func(h *harness, spec *JobSpec) { spec.AutoStart = false }, time.Second, UpdateCancel},
		{ferry.JobPrechecking, func(h *harness, spec *JobSpec) { h.precheckAfter = time.Hour }, 10 * time.Second, UpdateCancel},
		{ferry.JobMirroring, func(h *harness, spec *JobSpec) { h.mirrorAfter = time.Hour }, 10 * time.Second, UpdateCancel},
		{ferry.JobSyncing, func(h *harness, spec *JobSpec) { h.readyAfter = time.Hour }, 2 * time.Minute, UpdateCancel},
		{ferry.JobPaused, func(h *harness, spec *JobSpec) { h.readyAfter = time.Hour; h.at(2*time.Minute, UpdatePause) }, 3 * time.Minute, UpdateCancel},
		{ferry.JobReadyForCutover, func(h *harness, spec *JobSpec) {}, 2 * time.Minute, UpdateCancel},
		{ferry.JobTestCutover, func(h *harness, spec *JobSpec) { h.at(2*time.Minute, UpdateTestCutover) }, 3 * time.Minute, UpdateCancel},
		{ferry.JobCuttingOver, func(h *harness, spec *JobSpec) { h.finalAfter = time.Hour; h.at(2*time.Minute, UpdateCutover) }, 3 * time.Minute, ""},
		{ferry.JobCutoverComplete, func(h *harness, spec *JobSpec) { h.at(2*time.Minute, UpdateCutover) }, 5 * time.Minute, ""},
	}
	for _, tc := range cases {
		t.Run(string(tc.state), func(t *testing.T) {
			h := newHarness(t)
			spec := testSpec()
			spec.AutoStart = true
			tc.setup(h, &spec)
			var before, after Status
			h.queryAt(tc.at-time.Millisecond, &before)
			var illegal []string
			for _, a := range Actions() {
				if Legal(a, tc.state) != nil {
					illegal = append(illegal, a)
					h.at(tc.at, a)
				}
			}
			h.queryAt(tc.at+time.Second, &after)
			if tc.end != "" {
				h.at(tc.at+2*time.Second, tc.end)
			}
			if _, err := h.run(spec); err != nil {
				t.Fatal(err)
			}
			if before.State != tc.state || after.State != tc.state {
				t.Fatalf("state before %s, after %s, want %s", before.State, after.State, tc.state)
			}
			for _, a := range illegal {
				var r reply
				for _, x := range h.replies {
					if x.action == a && x.at == tc.at {
						r = x
					}
				}
				want := "cannot " + a + ": job is " + string(tc.state)
				if r.rejected == nil || !strings.Contains(r.rejected.Error(), want) {
					t.Errorf("%s: got rejection %v, want %q", a, r.rejected, want)
				}
			}
		})
	}
}

func TestActionInProgressRejectsOthers(t *testing.T) {
	h := newHarness(t)
	h.testAfter = time.Minute
	spec := testSpec()
	spec.AutoStart = true
	h.at(2*time.Minute, UpdateTestCutover)
	h.at(2*time.Minute+10*time.Second, UpdateCancel)
	h.at(5*time.Minute, UpdateCancel)
	if _, err := h.run(spec); err != nil {
		t.Fatal(err)
	}
	r := h.reply(UpdateCancel, 0)
	if r.rejected == nil || !strings.Contains(r.rejected.Error(), "action test-cutover is in progress") {
		t.Fatalf("cancel during test-cutover: %+v", r)
	}
	if r := h.reply(UpdateTestCutover, 0); r.state != ferry.JobTestCutover {
		t.Fatalf("test-cutover answered %+v", r)
	}
	if r := h.reply(UpdateCancel, 1); r.state != ferry.JobCancelled {
		t.Fatalf("second cancel answered %+v", r)
	}
}
