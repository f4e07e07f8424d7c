package sim

import (
	"slices"

	"territory/model"
)

// disk is a host's local disk: it survives a crash, except for writes that
// were not synced; it is wiped when the host is lost. Faults tear syncs and
// corrupt reads.
type disk struct {
	files map[string]*diskFile
}

type diskFile struct {
	durable    []byte
	hasDurable bool
	pending    []byte // written, not yet synced: lost on a crash
	hasPending bool
}

func newDisk() *disk { return &disk{files: map[string]*diskFile{}} }

// crash drops every unsynced write.
func (d *disk) crash() {
	for path, f := range d.files { // order-free: each file is independent
		f.pending, f.hasPending = nil, false
		if !f.hasDurable {
			delete(d.files, path)
		}
	}
}

func (w *World) diskCall(h *host, e model.DiskCall) {
	inc, req := h.incarnation, e.Req
	w.k.After(w.rndDisk.Between(50, 500), func() {
		if h.incarnation != inc || !h.up {
			return
		}
		res := model.DiskResult{ReqID: e.ReqID}
		f := h.disk.files[req.Path]
		switch req.Kind {
		case model.DiskWrite:
			if f == nil {
				f = &diskFile{}
				h.disk.files[req.Path] = f
			}
			f.pending, f.hasPending = slices.Clone(req.Data), true
		case model.DiskSync:
			if f != nil && f.hasPending {
				data := f.pending
				if w.rndFaults.Chance(w.diskTornPM) && len(data) > 0 {
					data = data[:w.rndFaults.Intn(len(data))] // torn: the device kept a prefix
					w.diskFaults++
				}
				f.durable, f.hasDurable = data, true
				f.pending, f.hasPending = nil, false
			}
		case model.DiskRead:
			var data []byte
			switch {
			case f != nil && f.hasPending:
				data = f.pending
			case f != nil && f.hasDurable:
				data = f.durable
			default:
				res.Outcome, res.Err = model.OutcomeFailed, model.ErrNotFound
				w.step(h, res)
				return
			}
			data = slices.Clone(data)
			if len(data) > 0 && w.rndFaults.Chance(w.diskCorruptPM) {
				data[w.rndFaults.Intn(len(data))] ^= 0x20
				w.diskFaults++
			}
			res.Resp.Data = data
		case model.DiskDelete:
			delete(h.disk.files, req.Path)
		}
		w.step(h, res)
	})
}
