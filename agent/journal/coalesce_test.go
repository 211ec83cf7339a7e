package journal

import (
	"fmt"
	"strings"
	"testing"
)

// r is shorthand for a record: "m a" modify a, "t a" attrib, "c a" create,
// "d a" delete, "r a>b" rename a to b, "s a" rescan, "c/ d" a directory.
// Seq is the position (1-based), Time 100*position.
func recsOf(spec string) []Record {
	var out []Record
	for i, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		op, arg, _ := strings.Cut(f, " ")
		r := Record{Seq: uint64(i + 1), Time: int64(100 * (i + 1))}
		if strings.HasSuffix(op, "/") {
			r.Dir = true
			op = strings.TrimSuffix(op, "/")
		}
		r.Op = map[string]uint8{"c": OpCreate, "m": OpModify, "t": OpAttrib, "d": OpDelete, "r": OpRename, "s": OpRescan}[op]
		if from, to, ok := strings.Cut(arg, ">"); ok {
			r.From, r.Path = from, to
		} else {
			r.Path = arg
		}
		out = append(out, r)
	}
	return out
}

func TestCoalesce(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		// want lists the surviving input positions (1-based).
		want []uint64
		// times are the expected Times of the survivors (0: own time).
		times []int64
	}{
		{"repeated modifies collapse into the last", "m a, m a, m a", []uint64{3}, []int64{100}},
		{"different paths stay apart", "m a, m b, m a, m b", []uint64{3, 4}, []int64{100, 200}},
		{"modify and attrib are distinct", "m a, t a, m a, t a", []uint64{3, 4}, []int64{100, 200}},
		{"create stays before the surviving modify", "c a, m a, m a", []uint64{1, 3}, []int64{0, 200}},
		{"rename of the path is a barrier", "m a, r a>b, m a", []uint64{1, 2, 3}, nil},
		{"rename to the path is a barrier", "m b, r a>b, m b", []uint64{1, 2, 3}, nil},
		{"delete is a barrier", "m a, d a, c a, m a", []uint64{1, 2, 3, 4}, nil},
		{"rename of an ancestor is a barrier", "m d/x/f, r/ d>e, m d/x/f", []uint64{1, 2, 3}, nil},
		{"rename of an unrelated path is not", "m d/f, m x, r/ e>g, m d/f", []uint64{2, 3, 4}, []int64{0, 0, 100}},
		{"file rename of a sibling prefix is not", "m ab, r a>c, m ab", []uint64{2, 3}, []int64{0, 100}},
		{"dir delete covers its subtree", "m d/f, d/ d, m d/f", []uint64{1, 2, 3}, nil},
		{"rescan of an ancestor is a barrier", "m d/f, s d, m d/f", []uint64{1, 2, 3}, nil},
		{"rescan of the root is a barrier for all", "m d/f, s , m d/f", []uint64{1, 2, 3}, nil},
		{"create of a sibling is not", "m d/f, c d/g, m d/f", []uint64{2, 3}, []int64{0, 100}},
		{"merging resumes after a barrier", "m a, m a, r a>b, m a, m a", []uint64{2, 3, 5}, []int64{100, 0, 400}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := recsOf(tc.in)
			orig := fmt.Sprint(in)
			got := Coalesce(in)
			if fmt.Sprint(in) != orig {
				t.Fatal("Coalesce modified its input")
			}
			var seqs []uint64
			for _, r := range got {
				seqs = append(seqs, r.Seq)
			}
			if fmt.Sprint(seqs) != fmt.Sprint(tc.want) {
				t.Fatalf("survivors %v, want %v", seqs, tc.want)
			}
			for i, r := range got {
				want := int64(100 * r.Seq)
				if tc.times != nil && tc.times[i] != 0 {
					want = tc.times[i]
				}
				if r.Time != want {
					t.Errorf("record %d time %d, want %d", r.Seq, r.Time, want)
				}
				if src := in[r.Seq-1]; r.Path != src.Path || r.From != src.From || r.Op != src.Op {
					t.Errorf("record %d changed: %+v from %+v", r.Seq, r, src)
				}
			}
		})
	}
}

// TestCoalesceLarge: 10,000 modifies of 10 files interleaved with creates of
// other files collapse to one per file, after the last create.
func TestCoalesceLarge(t *testing.T) {
	var in []Record
	for i := range 10000 {
		in = append(in, Record{Seq: uint64(len(in) + 1), Op: OpModify, Path: fmt.Sprintf("dir/f%d", i%10)})
		if i%100 == 0 {
			in = append(in, Record{Seq: uint64(len(in) + 1), Op: OpCreate, Path: fmt.Sprintf("dir/new%d", i)})
		}
	}
	got := Coalesce(in)
	mods := 0
	for _, r := range got {
		if r.Op == OpModify {
			mods++
		}
	}
	if mods != 10 || len(got) != 10+100 {
		t.Fatalf("%d records (%d modifies), want 110 (10)", len(got), mods)
	}
	if got[len(got)-1].Op != OpModify || got[len(got)-11].Op != OpCreate {
		t.Fatal("surviving modifies are not the last ones")
	}
}
