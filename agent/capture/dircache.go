package capture

import (
	"path"
	"strings"
)

// dirCache maps directory handles to paths as of the event being processed.
//
// fanotify names a changed entry by its parent directory's handle; resolving
// that handle through the kernel gives the directory's path now, which may
// already reflect renames still waiting in the queue. The cache instead keeps
// a tree of directory nodes that is updated in event order (mkdir adds a node,
// rename moves it, rmdir removes it), so paths are those at the time of each
// event. Directories under the root are loaded at start; a handle missing
// from the cache is resolved through the kernel and added.
type dirCache struct {
	root  *dnode
	byKey map[string]*dnode
	limit int
	// complete is true while every directory under the root that existed at
	// start or was created since is in the cache. A handle that cannot be
	// resolved and is not in a complete cache is outside the root.
	complete bool
}

// dnode is one directory. A node without parent is a top node whose name is
// an absolute path (the root, or a directory resolved through the kernel
// whose parent is unknown).
type dnode struct {
	name     string
	parent   *dnode
	children map[string]*dnode
	key      string
}

func newDirCache(rootAbs, rootKey string, limit int) *dirCache {
	r := &dnode{name: rootAbs, key: rootKey}
	c := &dirCache{root: r, byKey: map[string]*dnode{rootKey: r}, limit: limit, complete: true}
	return c
}

func (c *dirCache) lookup(key string) *dnode { return c.byKey[key] }

// path returns the absolute path of n.
func (c *dirCache) path(n *dnode) string {
	if n.parent == nil {
		return n.name
	}
	var parts []string
	for ; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	var b strings.Builder
	b.WriteString(n.name)
	for i := len(parts) - 1; i >= 0; i-- {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "/") {
			b.WriteByte('/')
		}
		b.WriteString(parts[i])
	}
	return b.String()
}

// full reports whether the cache reached its size limit.
func (c *dirCache) full() bool { return len(c.byKey) >= c.limit }

// add records directory name under parent with handle key, replacing any
// other node already there; a node already known by key is moved there. It
// returns nil when the cache is full.
func (c *dirCache) add(parent *dnode, name, key string) *dnode {
	if old := c.byKey[key]; old != nil {
		c.move(old, parent, name)
		return old
	}
	if old := parent.children[name]; old != nil {
		c.remove(old)
	}
	if c.full() {
		c.evict()
		if c.full() {
			c.complete = false
			return nil
		}
	}
	n := &dnode{name: name, parent: parent, key: key}
	if parent.children == nil {
		parent.children = map[string]*dnode{}
	}
	parent.children[name] = n
	c.byKey[key] = n
	return n
}

// addResolved records a directory whose absolute path came from the kernel.
// It is attached to the tree when its parent is known, else kept as a top
// node (whose path no later rename will update).
func (c *dirCache) addResolved(abs, key string) *dnode {
	if p := c.find(path.Dir(abs)); p != nil && abs != "/" {
		if n := c.add(p, path.Base(abs), key); n != nil {
			return n
		}
	}
	if c.full() {
		c.evict()
		if c.full() {
			return &dnode{name: abs, key: key} // uncached
		}
	}
	n := &dnode{name: abs, key: key}
	c.byKey[key] = n
	return n
}

// find returns the node for an absolute path under the root, or nil.
func (c *dirCache) find(abs string) *dnode {
	rel, ok := relTo(c.root.name, abs)
	if !ok {
		return nil
	}
	n := c.root
	if rel == "" {
		return n
	}
	for part := range strings.SplitSeq(rel, "/") {
		if n = n.children[part]; n == nil {
			return nil
		}
	}
	return n
}

// child returns the cached subdirectory name of n, or nil.
func (c *dirCache) child(n *dnode, name string) *dnode { return n.children[name] }

// move renames n to newName under newParent. A node already at the target
// (an empty directory replaced by the rename) is dropped.
func (c *dirCache) move(n, newParent *dnode, newName string) {
	for p := newParent; p != nil; p = p.parent {
		if p == n { // cannot happen for a real rename; keep the tree acyclic
			c.remove(n)
			return
		}
	}
	if old := newParent.children[newName]; old != nil && old != n {
		c.remove(old)
	}
	if n.parent != nil {
		delete(n.parent.children, n.name)
	}
	n.name, n.parent = newName, newParent
	if newParent.children == nil {
		newParent.children = map[string]*dnode{}
	}
	newParent.children[newName] = n
}

// remove drops n and its subtree.
func (c *dirCache) remove(n *dnode) {
	if n == c.root {
		return
	}
	if n.parent != nil && n.parent.children[n.name] == n {
		delete(n.parent.children, n.name)
	}
	var drop func(*dnode)
	drop = func(d *dnode) {
		if c.byKey[d.key] == d {
			delete(c.byKey, d.key)
		}
		for _, ch := range d.children {
			drop(ch)
		}
	}
	drop(n)
	n.parent = nil
}

// evict drops every node that is not under the root.
func (c *dirCache) evict() {
	for _, n := range c.byKey {
		if !c.underRoot(n) {
			c.remove(n)
		}
	}
}

func (c *dirCache) underRoot(n *dnode) bool {
	for ; n != nil; n = n.parent {
		if n == c.root {
			return true
		}
	}
	return false
}
