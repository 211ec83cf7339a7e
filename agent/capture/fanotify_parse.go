package capture

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"golang.org/x/sys/unix"
)

// Kernel uapi layout (include/uapi/linux/fanotify.h), native endian:
//
//	struct fanotify_event_metadata {   // 24 bytes
//		__u32 event_len; __u8 vers; __u8 reserved; __u16 metadata_len;
//		__aligned_u64 mask; __s32 fd; __s32 pid;
//	};
//	struct fanotify_event_info_header { __u8 info_type; __u8 pad; __u16 len; };
//	struct fanotify_event_info_fid {
//		struct fanotify_event_info_header hdr;
//		__kernel_fsid_t fsid;          // 2 x int32
//		unsigned char handle[];        // struct file_handle, then for the
//	};                                 // *_DFID_NAME types a NUL-terminated name
//	struct file_handle { __u32 handle_bytes; int handle_type; unsigned char f_handle[]; };
const (
	metaSize       = 24
	infoHeaderSize = 4
	fsidSize       = 8
	fileHandleHdr  = 8
)

// fid identifies a filesystem object: filesystem id plus file handle.
type fid struct {
	fsid   [2]int32
	htype  int32
	handle []byte
}

// key is a map key for the object.
func (f fid) key() string {
	var b [12]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(f.fsid[0]))
	binary.NativeEndian.PutUint32(b[4:], uint32(f.fsid[1]))
	binary.NativeEndian.PutUint32(b[8:], uint32(f.htype))
	return string(b[:]) + string(f.handle)
}

func (f fid) valid() bool { return f.handle != nil }

// dirName is a directory fid plus an entry name in it.
type dirName struct {
	dir  fid
	name string
}

// rawEvent is one decoded fanotify event.
type rawEvent struct {
	mask uint64
	// entry is the DFID_NAME record: the parent directory and the entry
	// name ("." when the event is about the directory itself).
	entry dirName
	// oldEntry and newEntry are the FAN_RENAME records.
	oldEntry, newEntry dirName
	// target is the FID record (FAN_REPORT_TARGET_FID): the object itself.
	target fid
}

// parseEvents decodes a buffer read from a fanotify fd. Records of unknown
// types are skipped; a malformed buffer is an error (the caller rescans).
func parseEvents(buf []byte, out []rawEvent) ([]rawEvent, error) {
	for len(buf) > 0 {
		if len(buf) < metaSize {
			return out, fmt.Errorf("fanotify: short event header (%d bytes)", len(buf))
		}
		evLen := int(binary.NativeEndian.Uint32(buf[0:]))
		vers := buf[4]
		metaLen := int(binary.NativeEndian.Uint16(buf[6:]))
		if vers != unix.FANOTIFY_METADATA_VERSION {
			return out, fmt.Errorf("fanotify: metadata version %d, want %d", vers, unix.FANOTIFY_METADATA_VERSION)
		}
		if evLen < metaSize || evLen > len(buf) || metaLen < metaSize || metaLen > evLen {
			return out, fmt.Errorf("fanotify: bad event length %d/%d (buffer %d)", evLen, metaLen, len(buf))
		}
		ev := rawEvent{mask: binary.NativeEndian.Uint64(buf[8:])}
		if fd := int32(binary.NativeEndian.Uint32(buf[16:])); fd >= 0 {
			// Not expected in FID mode; never leak it.
			unix.Close(int(fd))
		}
		if err := parseInfo(buf[metaLen:evLen], &ev); err != nil {
			return out, err
		}
		out = append(out, ev)
		buf = buf[evLen:]
	}
	return out, nil
}

func parseInfo(b []byte, ev *rawEvent) error {
	for len(b) > 0 {
		if len(b) < infoHeaderSize {
			return fmt.Errorf("fanotify: short info header")
		}
		typ := b[0]
		n := int(binary.NativeEndian.Uint16(b[2:]))
		if n < infoHeaderSize || n > len(b) {
			return fmt.Errorf("fanotify: bad info record length %d", n)
		}
		rec := b[:n]
		b = b[n:]
		switch typ {
		case unix.FAN_EVENT_INFO_TYPE_FID, unix.FAN_EVENT_INFO_TYPE_DFID:
			f, _, err := parseFid(rec, false)
			if err != nil {
				return err
			}
			if typ == unix.FAN_EVENT_INFO_TYPE_FID {
				ev.target = f
			} else {
				ev.entry = dirName{dir: f, name: "."}
			}
		case unix.FAN_EVENT_INFO_TYPE_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME, unix.FAN_EVENT_INFO_TYPE_NEW_DFID_NAME:
			f, name, err := parseFid(rec, true)
			if err != nil {
				return err
			}
			dn := dirName{dir: f, name: name}
			switch typ {
			case unix.FAN_EVENT_INFO_TYPE_DFID_NAME:
				ev.entry = dn
			case unix.FAN_EVENT_INFO_TYPE_OLD_DFID_NAME:
				ev.oldEntry = dn
			default:
				ev.newEntry = dn
			}
		}
	}
	return nil
}

// parseFid decodes a fanotify_event_info_fid record (header included).
func parseFid(rec []byte, withName bool) (fid, string, error) {
	const hdr = infoHeaderSize + fsidSize + fileHandleHdr
	if len(rec) < hdr {
		return fid{}, "", fmt.Errorf("fanotify: short fid record (%d bytes)", len(rec))
	}
	var f fid
	f.fsid[0] = int32(binary.NativeEndian.Uint32(rec[4:]))
	f.fsid[1] = int32(binary.NativeEndian.Uint32(rec[8:]))
	hb := int(binary.NativeEndian.Uint32(rec[12:]))
	f.htype = int32(binary.NativeEndian.Uint32(rec[16:]))
	if hb > len(rec)-hdr {
		return fid{}, "", fmt.Errorf("fanotify: file handle of %d bytes overruns record", hb)
	}
	f.handle = bytes.Clone(rec[hdr : hdr+hb])
	if !withName {
		return f, "", nil
	}
	nameb := rec[hdr+hb:]
	if i := bytes.IndexByte(nameb, 0); i >= 0 {
		nameb = nameb[:i]
	} else {
		return fid{}, "", fmt.Errorf("fanotify: unterminated name")
	}
	return f, string(nameb), nil
}
