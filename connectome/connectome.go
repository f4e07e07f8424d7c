// Package connectome reads a connectome edge list (the format of
// cect/data/herm_full_edgelist.csv, Cook et al. 2019: columns Source, Target,
// Weight, Type) into the neurons and directed synapses the store holds.
//
// # Names and ids
//
// Names are trimmed of surrounding white space ("I1L " and " I1L" are one
// neuron). A neuron's id is a 53-bit hash of its name (FNV-1a 64 of
// "territory/connectome/v1", a NUL and the name, masked to 53 bits so it
// survives a JSON number; never 0). It depends on the name alone: not on the
// file's order, not on the other names, not on the run. Two names with the same
// hash (about one chance in 10^11 for a file of this size) are resolved by
// taking the names in sorted (byte) order: the first keeps the hash, the next
// rehashes with a counter appended ("name", NUL, "1"; then "2", ...) until its id
// is free. So the mapping stays independent of file order; only a colliding
// name that sorts before it can move an id. The resolution is tested with a
// hash forced to collide.
//
// # Weights
//
// Weight is the file's synapse count, a decimal number, non-zero, at most
// 16384 in magnitude; it becomes fixed-point (model.FixedOne per unit, rounded
// to the nearest 1/65536).
//
// # Gap junctions
//
// A "chemical" row Source,Target,W is one directed synapse Source→Target of
// weight W. An "electrical" row is a gap junction, which is undirected: it is
// stored as two directed synapses, Source→Target and Target→Source. Each
// direction takes the weight of the file's row for that direction (the file
// lists most gap junctions both ways, a few with different weights); a
// direction the file does not list takes the weight of the row it has
// (counted in Stats.GapMirrored). A self-loop gap junction is one synapse.
//
// The store holds one synapse per ordered pair, so a pair with both a chemical
// row and an electrical direction is one synapse whose weight is the sum
// (counted in Stats.Merged). For the degree policy every stored synapse counts
// once: one out-degree at pre and one in-degree at post. A gap junction between
// A and B therefore adds one in-degree and one out-degree to each of A and B.
//
// # Errors
//
// Parse reads the whole input before it returns anything: a file with a bad
// row is refused whole (a *FileError listing every bad row by line, up to
// MaxErrors), so an importer that parses first writes nothing from a bad file.
// A duplicated row (same Source, Target and Type) is an error naming both
// lines, since neither summing nor keeping one would be what the file meant.
package connectome

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"territory/model"
)

// Kind is a row's synapse type.
type Kind uint8

const (
	Chemical   Kind = iota + 1 // a directed chemical synapse
	Electrical                 // a gap junction (undirected)
)

func (k Kind) String() string {
	switch k {
	case Chemical:
		return "chemical"
	case Electrical:
		return "electrical"
	}
	return "kind?"
}

// Neuron is a named neuron and its id.
type Neuron struct {
	Name string
	ID   model.NeuronID
}

// Synapse is one directed synapse to store.
type Synapse struct {
	Pre, Post model.NeuronID
	Weight    int64 // fixed-point: chemical plus electrical
	// Chemical and Electrical are the two contributions (fixed-point; 0 if
	// none). Lines are the file's lines that made it (an electrical
	// direction mirrored from the reverse row names that row's line).
	Chemical, Electrical int64
	Lines                []int
}

// Stats counts what Parse read and how it combined rows.
type Stats struct {
	Rows, ChemicalRows, ElectricalRows int
	GapMirrored                        int // gap-junction directions the file did not list (taken from the reverse row)
	Merged                             int // ordered pairs with both a chemical and an electrical contribution
	SelfLoops                          int // synapses with pre == post
	Collisions                         int // names whose hash was taken (see the package doc)
}

// Connectome is a parsed edge list: neurons sorted by name, synapses sorted by
// (pre, post) id.
type Connectome struct {
	Neurons  []Neuron
	Synapses []Synapse
	Stats    Stats
	SHA256   string // of the input bytes
	byName   map[string]model.NeuronID
	byID     map[model.NeuronID]string
}

// ID is the id of a neuron by name (trimmed).
func (c *Connectome) ID(name string) (model.NeuronID, bool) {
	id, ok := c.byName[strings.TrimSpace(name)]
	return id, ok
}

// Name is the name of a neuron by id.
func (c *Connectome) Name(id model.NeuronID) (string, bool) {
	n, ok := c.byID[id]
	return n, ok
}

// Degrees returns every neuron's out- and in-degree over the stored synapses.
func (c *Connectome) Degrees() (out, in map[model.NeuronID]int) {
	out, in = map[model.NeuronID]int{}, map[model.NeuronID]int{}
	for _, s := range c.Synapses {
		out[s.Pre]++
		in[s.Post]++
	}
	return out, in
}

// RowError is one bad row.
type RowError struct {
	Line int
	Msg  string
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// MaxErrors bounds the rows a FileError lists.
const MaxErrors = 20

// FileError is a refused file: every bad row (up to MaxErrors), by line.
type FileError struct {
	Name      string // the file's name, if known
	Rows      []RowError
	Truncated bool // more bad rows than MaxErrors
}

func (e *FileError) Error() string {
	var b strings.Builder
	name := e.Name
	if name == "" {
		name = "edge list"
	}
	fmt.Fprintf(&b, "%s: refused (nothing imported): ", name)
	for i, r := range e.Rows {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(r.Error())
	}
	if e.Truncated {
		fmt.Fprintf(&b, "; and more (only the first %d are listed)", MaxErrors)
	}
	return b.String()
}

// Hash is a name hash; Parse uses NameHash, tests force collisions.
type Hash func(name string, attempt int) uint64

// idMask keeps ids within 53 bits: exact as JSON numbers.
const idMask = 1<<53 - 1

// NameHash is the id hash of the package doc.
func NameHash(name string, attempt int) uint64 {
	h := fnv.New64a()
	h.Write([]byte("territory/connectome/v1\x00"))
	h.Write([]byte(name))
	if attempt > 0 {
		h.Write([]byte{0})
		h.Write([]byte(strconv.Itoa(attempt)))
	}
	return h.Sum64() & idMask
}

// Parse reads an edge list with NameHash ids.
func Parse(r io.Reader) (*Connectome, error) { return ParseWith(r, NameHash) }

// Load parses the file at path; errors name it.
func Load(path string) (*Connectome, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := Parse(f)
	var fe *FileError
	if errors.As(err, &fe) {
		fe.Name = path
	} else if err != nil {
		err = fmt.Errorf("%s: %w", path, err)
	}
	return c, err
}

// row is a good row.
type row struct {
	line     int
	src, dst string
	weight   int64
	kind     Kind
}

type rowKey struct {
	src, dst string
	kind     Kind
}

// ParseWith reads an edge list, naming neurons with hash.
func ParseWith(r io.Reader, hash Hash) (*Connectome, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("reading the edge list: %w", err)
	}
	sum := sha256.Sum256(data)
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	cr := csv.NewReader(bytes.NewReader(data))
	cr.FieldsPerRecord = -1
	fe := &FileError{}
	bad := func(line int, format string, args ...any) {
		if len(fe.Rows) >= MaxErrors {
			fe.Truncated = true
			return
		}
		fe.Rows = append(fe.Rows, RowError{Line: line, Msg: fmt.Sprintf(format, args...)})
	}
	header, err := cr.Read()
	if err == io.EOF {
		return nil, &FileError{Rows: []RowError{{Line: 1, Msg: "empty file: want a header Source,Target,Weight,Type"}}}
	}
	if err != nil {
		return nil, &FileError{Rows: []RowError{csvRowError(err, 1)}}
	}
	cols, err := columns(header)
	if err != nil {
		return nil, &FileError{Rows: []RowError{{Line: 1, Msg: err.Error()}}}
	}
	var rows []row
	first := map[rowKey]int{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			re := csvRowError(err, 0)
			bad(re.Line, "%s", re.Msg)
			// A quoting error can leave the reader mid-field: stop rather
			// than report the rest of the file askew (it is refused anyway).
			break
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < cols.need {
			bad(line, "%d fields, want at least %d (Source,Target,Weight,Type)", len(rec), cols.need)
			continue
		}
		rw, msg := parseRow(rec, cols, line)
		if msg != "" {
			bad(line, "%s", msg)
			continue
		}
		k := rowKey{rw.src, rw.dst, rw.kind}
		if prev, dup := first[k]; dup {
			bad(line, "duplicate of line %d (%s %s -> %s)", prev, rw.kind, rw.src, rw.dst)
			continue
		}
		first[k] = line
		rows = append(rows, rw)
	}
	if len(fe.Rows) > 0 {
		return nil, fe
	}
	if len(rows) == 0 {
		return nil, &FileError{Rows: []RowError{{Line: 1, Msg: "no edges after the header"}}}
	}
	c, err := build(rows, hash)
	if err != nil {
		return nil, err
	}
	c.SHA256 = hex.EncodeToString(sum[:])
	return c, nil
}

func csvRowError(err error, line int) RowError {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return RowError{Line: pe.StartLine, Msg: pe.Err.Error()}
	}
	return RowError{Line: line, Msg: err.Error()}
}

type colIndex struct{ src, dst, weight, typ, need int }

func columns(header []string) (colIndex, error) {
	idx := map[string]int{}
	for i, h := range header {
		h = strings.ToLower(strings.TrimSpace(h))
		if _, dup := idx[h]; dup && h != "" {
			return colIndex{}, fmt.Errorf("header: column %q twice", h)
		}
		idx[h] = i
	}
	var c colIndex
	for _, f := range []struct {
		name string
		at   *int
	}{{"source", &c.src}, {"target", &c.dst}, {"weight", &c.weight}, {"type", &c.typ}} {
		i, ok := idx[f.name]
		if !ok {
			return colIndex{}, fmt.Errorf("header %q: no column %q (want Source,Target,Weight,Type)", strings.Join(header, ","), f.name)
		}
		*f.at = i
		c.need = max(c.need, i+1)
	}
	return c, nil
}

func parseRow(rec []string, c colIndex, line int) (row, string) {
	r := row{line: line}
	var msg string
	if r.src, msg = parseName("Source", rec[c.src]); msg != "" {
		return r, msg
	}
	if r.dst, msg = parseName("Target", rec[c.dst]); msg != "" {
		return r, msg
	}
	w, err := ParseWeight(rec[c.weight])
	if err != nil {
		return r, "Weight: " + err.Error()
	}
	r.weight = w
	switch strings.ToLower(strings.TrimSpace(rec[c.typ])) {
	case "chemical":
		r.kind = Chemical
	case "electrical":
		r.kind = Electrical
	default:
		return r, fmt.Sprintf("Type %q: want chemical or electrical", strings.TrimSpace(rec[c.typ]))
	}
	return r, ""
}

func parseName(col, s string) (string, string) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", col + ": empty name"
	}
	if !utf8.ValidString(s) {
		return "", fmt.Sprintf("%s %q: not UTF-8", col, s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			return "", fmt.Sprintf("%s %q: white space or a control character inside the name", col, s)
		}
	}
	if len(s) > 256 {
		return "", fmt.Sprintf("%s: name of %d bytes (at most 256)", col, len(s))
	}
	return s, ""
}

// maxWeightUnits bounds a weight's magnitude: model.WeightMax in units.
const maxWeightUnits = model.WeightMax / model.FixedOne

var decimal = regexp.MustCompile(`^[-+]?[0-9]{1,12}(\.[0-9]{1,12})?$`)

// ParseWeight reads a decimal weight (the file's unit) into fixed-point,
// rounding to the nearest 1/FixedOne. Zero, and magnitudes above 16384, are
// errors.
func ParseWeight(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if !decimal.MatchString(s) {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a decimal number", s)
	}
	if math.Abs(f) > float64(maxWeightUnits) {
		return 0, fmt.Errorf("%s exceeds %d in magnitude", s, maxWeightUnits)
	}
	// Exact for the integer counts of the Cook data; a decimal rounds once
	// to the nearest 1/65536 (ParseFloat's correctly rounded value, scaled by
	// a power of two, is exact).
	w := int64(math.Round(f * float64(model.FixedOne)))
	if w == 0 {
		return 0, fmt.Errorf("%s is zero (a zero-weight edge is no edge)", s)
	}
	return w, nil
}

func build(rows []row, hash Hash) (*Connectome, error) {
	c := &Connectome{byName: map[string]model.NeuronID{}, byID: map[model.NeuronID]string{}}
	c.Stats.Rows = len(rows)
	var names []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, n := range []string{r.src, r.dst} {
			if !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	slices.Sort(names)
	for _, n := range names {
		for attempt := 0; ; attempt++ {
			id := model.NeuronID(hash(n, attempt) & idMask)
			if _, taken := c.byID[id]; id == 0 || taken {
				if attempt >= 1000 {
					return nil, fmt.Errorf("connectome: no free id for neuron %q after %d attempts (a broken hash?)", n, attempt)
				}
				if id != 0 {
					c.Stats.Collisions++
				}
				continue
			}
			c.byName[n], c.byID[id] = id, n
			c.Neurons = append(c.Neurons, Neuron{Name: n, ID: id})
			break
		}
	}
	type dir struct{ pre, post model.NeuronID }
	syn := map[dir]*Synapse{}
	get := func(d dir) *Synapse {
		s := syn[d]
		if s == nil {
			s = &Synapse{Pre: d.pre, Post: d.post}
			syn[d] = s
		}
		return s
	}
	listed := map[dir]bool{}
	for _, r := range rows {
		if r.kind == Electrical {
			listed[dir{c.byName[r.src], c.byName[r.dst]}] = true
		}
	}
	for _, r := range rows {
		d := dir{c.byName[r.src], c.byName[r.dst]}
		switch r.kind {
		case Chemical:
			c.Stats.ChemicalRows++
			s := get(d)
			s.Chemical += r.weight
			s.Lines = append(s.Lines, r.line)
		case Electrical:
			c.Stats.ElectricalRows++
			s := get(d)
			s.Electrical += r.weight
			s.Lines = append(s.Lines, r.line)
			rev := dir{d.post, d.pre}
			if rev != d && !listed[rev] {
				c.Stats.GapMirrored++
				m := get(rev)
				m.Electrical += r.weight
				m.Lines = append(m.Lines, r.line)
			}
		}
	}
	for _, s := range syn { // order: sorted below
		s.Weight = s.Chemical + s.Electrical
		if s.Weight == 0 || s.Weight < model.WeightMin || s.Weight > model.WeightMax {
			pre, post := c.byID[s.Pre], c.byID[s.Post]
			return nil, &FileError{Rows: []RowError{{Line: slices.Min(s.Lines),
				Msg: fmt.Sprintf("%s -> %s: the combined weight %d/%d (lines %v) is zero or out of range", pre, post, s.Weight, model.FixedOne, s.Lines)}}}
		}
		slices.Sort(s.Lines)
		if s.Chemical != 0 && s.Electrical != 0 {
			c.Stats.Merged++
		}
		if s.Pre == s.Post {
			c.Stats.SelfLoops++
		}
		c.Synapses = append(c.Synapses, *s)
	}
	slices.SortFunc(c.Synapses, func(a, b Synapse) int {
		return cmp.Or(cmp.Compare(a.Pre, b.Pre), cmp.Compare(a.Post, b.Post))
	})
	return c, nil
}

// DefaultPath is where scripts/connectome.sh puts the Cook et al. edge list:
// $TERRITORY_CONNECTOME if set, else $TERRITORY_CACHE/cect-0.3.5/, else the
// user cache directory's territory/cect-0.3.5/ (~/.cache on Linux).
func DefaultPath() string {
	if p := os.Getenv("TERRITORY_CONNECTOME"); p != "" {
		return p
	}
	dir := os.Getenv("TERRITORY_CACHE")
	if dir == "" {
		base, err := os.UserCacheDir()
		if err != nil {
			base = filepath.Join(os.TempDir(), "cache")
		}
		dir = filepath.Join(base, "territory")
	}
	return filepath.Join(dir, "cect-0.3.5", "herm_full_edgelist.csv")
}

// FetchHint tells how to get the file.
const FetchHint = "fetch it with scripts/connectome.sh fetch (pip download of the cect package; it prints the path), or set TERRITORY_CONNECTOME to an edge list"

// LoadDefault loads DefaultPath, with a message telling how to fetch the
// file when it is absent.
func LoadDefault() (*Connectome, error) {
	p := DefaultPath()
	if _, err := os.Stat(p); err != nil {
		return nil, fmt.Errorf("connectome %s: %w; %s", p, err, FetchHint)
	}
	return Load(p)
}
