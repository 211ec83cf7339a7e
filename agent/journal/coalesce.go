package journal

import "strings"

// Op values as defined by agent/capture.Op (kept in step with it; the
// journal stores them as opaque bytes otherwise).
const (
	OpCreate uint8 = iota + 1
	OpModify
	OpAttrib
	OpDelete
	OpRename
	OpRescan
)

// Coalesce collapses repeated modify records, and repeated attrib records,
// for one path into the last of them, since a shipper reads the current
// content and metadata when it ships. Two records are merged only if no
// record between them creates, deletes, renames or rescans that path, one of
// its ancestors or (for directories) one of its descendants: nothing is ever
// moved across such a record. The surviving record keeps its own Seq and
// Size and takes the earliest Time of those merged (so lag is not
// understated). Order is otherwise preserved; the input is not modified.
func Coalesce(recs []Record) []Record {
	type key struct {
		op   uint8
		path string
	}
	// later maps a (op, path) to the index of the surviving record after
	// the current position, as long as no barrier lies between.
	later := map[key]int{}
	keep := make([]bool, len(recs))
	earliest := make([]int64, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := &recs[i]
		keep[i] = true
		earliest[i] = r.Time
		switch r.Op {
		case OpModify, OpAttrib:
			k := key{r.Op, r.Path}
			if j, ok := later[k]; ok {
				keep[i] = false
				earliest[j] = min(earliest[j], r.Time)
				continue
			}
			later[k] = i
		default:
			// A structural record is a barrier for every path it touches.
			barrier := func(p string) {
				if r.Dir || r.Op == OpRescan {
					for k := range later {
						if related(p, k.path) {
							delete(later, k)
						}
					}
					return
				}
				// Nothing lives under a file: only p and its ancestors.
				for a := p; ; {
					delete(later, key{OpModify, a})
					delete(later, key{OpAttrib, a})
					if a == "" {
						break
					}
					a = a[:max(strings.LastIndexByte(a, '/'), 0)]
				}
			}
			barrier(r.Path)
			if r.Op == OpRename {
				barrier(r.From)
			}
		}
	}
	out := make([]Record, 0, len(recs))
	for i := range recs {
		if keep[i] {
			r := recs[i]
			r.Time = earliest[i]
			out = append(out, r)
		}
	}
	return out
}

// related reports whether a and b are the same path or one contains the
// other ("" is the root and contains everything).
func related(a, b string) bool {
	if a == b || a == "" || b == "" {
		return true
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	return strings.HasPrefix(b, a) && b[len(a)] == '/'
}
