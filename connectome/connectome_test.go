package connectome

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"territory/model"
)

const small = "\xef\xbb\xbfSource , Target,Weight ,Type\n" +
	"A , B           ,3,chemical\n" +
	" B,A,2, electrical\n" +
	"A,B,2,electrical\n" +
	"C,A,1.5,chemical\n" +
	"C,D,4,electrical\n" + // D->C is not listed: mirrored
	"E,E,7,chemical\n" +
	"E,E,1,electrical"

func mustParse(t *testing.T, s string) *Connectome {
	t.Helper()
	c, err := Parse(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func syn(t *testing.T, c *Connectome, pre, post string) Synapse {
	t.Helper()
	p, ok1 := c.ID(pre)
	q, ok2 := c.ID(post)
	if !ok1 || !ok2 {
		t.Fatalf("no neuron %s or %s", pre, post)
	}
	for _, s := range c.Synapses {
		if s.Pre == p && s.Post == q {
			return s
		}
	}
	t.Fatalf("no synapse %s -> %s", pre, post)
	return Synapse{}
}

func TestParseCombinesRowsAsDocumented(t *testing.T) {
	c := mustParse(t, small)
	if got := len(c.Neurons); got != 5 {
		t.Fatalf("%d neurons, want 5 (A B C D E): %v", got, c.Neurons)
	}
	for i, n := range c.Neurons {
		if want := model.NeuronID(NameHash(n.Name, 0)); n.ID != want {
			t.Errorf("%s: id %d, want the hash %d", n.Name, n.ID, want)
		}
		if i > 0 && c.Neurons[i-1].Name >= n.Name {
			t.Errorf("neurons not sorted by name: %v", c.Neurons)
		}
		if n.ID == 0 || n.ID > idMask {
			t.Errorf("%s: id %d outside 1..2^53-1", n.Name, n.ID)
		}
	}
	one := model.FixedOne
	for _, w := range []struct {
		pre, post  string
		chem, elec int64
		lines      []int
	}{
		{"A", "B", 3 * one, 2 * one, []int{2, 4}}, // chemical and one gap-junction direction: merged
		{"B", "A", 0, 2 * one, []int{3}},
		{"C", "A", 3 * one / 2, 0, []int{5}},
		{"C", "D", 0, 4 * one, []int{6}},
		{"D", "C", 0, 4 * one, []int{6}}, // mirrored
		{"E", "E", 7 * one, 1 * one, []int{7, 8}},
	} {
		s := syn(t, c, w.pre, w.post)
		if s.Chemical != w.chem || s.Electrical != w.elec || s.Weight != w.chem+w.elec || !slices.Equal(s.Lines, w.lines) {
			t.Errorf("%s -> %s: %+v, want chemical %d electrical %d lines %v", w.pre, w.post, s, w.chem, w.elec, w.lines)
		}
	}
	if len(c.Synapses) != 6 {
		t.Errorf("%d synapses, want 6", len(c.Synapses))
	}
	want := Stats{Rows: 7, ChemicalRows: 3, ElectricalRows: 4, GapMirrored: 1, Merged: 2, SelfLoops: 1}
	if c.Stats != want {
		t.Errorf("stats %+v, want %+v", c.Stats, want)
	}
	out, in := c.Degrees()
	a, _ := c.ID("A")
	if out[a] != 1 || in[a] != 2 {
		t.Errorf("A: out %d in %d, want 1 and 2", out[a], in[a])
	}
	if n, ok := c.Name(a); !ok || n != "A" {
		t.Errorf("Name(%d) = %q", a, n)
	}
}

func TestCollidingNamesGetDistinctOrderIndependentIDs(t *testing.T) {
	// Every name hashes to 7 at attempt 0, and attempts collide too.
	h := func(name string, attempt int) uint64 { return 7 + uint64(attempt) }
	rows := []string{"X,Y,1,chemical", "Y,Z,1,chemical", "Z,X,2,electrical", "W,X,1,chemical"}
	var first []Neuron
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		r.Shuffle(len(rows), func(i, j int) { rows[i], rows[j] = rows[j], rows[i] })
		c, err := ParseWith(strings.NewReader("Source,Target,Weight,Type\n"+strings.Join(rows, "\n")), h)
		if err != nil {
			t.Fatal(err)
		}
		ids := map[model.NeuronID]bool{}
		for _, n := range c.Neurons {
			if ids[n.ID] {
				t.Fatalf("id %d given twice: %v", n.ID, c.Neurons)
			}
			ids[n.ID] = true
		}
		if c.Stats.Collisions != 6 { // W:0, X:1, Y:2, Z:3
			t.Errorf("collisions %d, want 6", c.Stats.Collisions)
		}
		if i == 0 {
			first = c.Neurons
			if first[0].Name != "W" || first[0].ID != 7 || first[3].Name != "Z" || first[3].ID != 10 {
				t.Fatalf("sorted names take the ids in order: %v", first)
			}
		} else if !slices.Equal(first, c.Neurons) {
			t.Fatalf("file order changed the ids: %v, then %v", first, c.Neurons)
		}
	}
}

func TestBadRowsAreRefusedWithLineNumbers(t *testing.T) {
	hdr := "Source,Target,Weight,Type\n"
	for _, c := range []struct {
		name, in string
		lines    []int
		want     string
	}{
		{"empty", "", []int{1}, "empty file"},
		{"no header column", "Source,Target,Weight\nA,B,1\n", []int{1}, `no column "type"`},
		{"header only", hdr, []int{1}, "no edges"},
		{"bad weight", hdr + "A,B,1,chemical\nA,C,x,chemical\n", []int{3}, `Weight: "x" is not a decimal`},
		{"hex weight", hdr + "A,C,0x10,chemical\n", []int{2}, "not a decimal"},
		{"zero weight", hdr + "A,C,0,chemical\n", []int{2}, "zero"},
		{"huge weight", hdr + "A,C,20000,chemical\n", []int{2}, "exceeds 16384"},
		{"bad type", hdr + "A,B,1,chemcal\n", []int{2}, `Type "chemcal"`},
		{"empty name", hdr + "A,  ,1,chemical\n", []int{2}, "Target: empty name"},
		{"space inside", hdr + "A B,C,1,chemical\n", []int{2}, "white space"},
		{"control", hdr + "A\x01,C,1,chemical\n", []int{2}, "control"},
		{"short row", hdr + "A,B,1,chemical\nA,B\n", []int{3}, "2 fields"},
		{"duplicate", hdr + "A,B,1,chemical\nC,D,1,chemical\n A ,B ,2,chemical\n", []int{4}, "duplicate of line 2"},
		{"several", hdr + "A,B,-,chemical\nA,B,1,chemical\nA,,1,chemical\nA,B,1,x\n", []int{2, 4, 5}, "line 2"},
		{"bad quote", hdr + "A,B,1,chemical\n\"A,B,1,chemical\n", []int{3}, "quote"},
		{"gap sums to zero", hdr + "A,B,1,chemical\nA,B,-1,electrical\n", []int{2}, "combined weight"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(c.in))
			if got != nil {
				t.Errorf("a refused file returned a connectome: %+v", got)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v (%T), want a *FileError", err, err)
			}
			var lines []int
			for _, r := range fe.Rows {
				lines = append(lines, r.Line)
			}
			if !slices.Equal(lines, c.lines) {
				t.Errorf("lines %v, want %v: %v", lines, c.lines, err)
			}
			if !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "refused (nothing imported)") {
				t.Errorf("error %q does not say %q", err, c.want)
			}
		})
	}
}

func TestManyBadRowsAreTruncated(t *testing.T) {
	var b strings.Builder
	b.WriteString("Source,Target,Weight,Type\n")
	for range 50 {
		b.WriteString("A,B,nope,chemical\n")
	}
	_, err := Parse(strings.NewReader(b.String()))
	var fe *FileError
	if !errors.As(err, &fe) || len(fe.Rows) != MaxErrors || !fe.Truncated || !strings.Contains(err.Error(), "and more") {
		t.Fatalf("%v", err)
	}
}

// checkWellFormed checks what every parsed connectome must satisfy.
func checkWellFormed(t *testing.T, c *Connectome) {
	t.Helper()
	ids := map[model.NeuronID]bool{}
	for i, n := range c.Neurons {
		if n.ID == 0 || ids[n.ID] || (i > 0 && c.Neurons[i-1].Name >= n.Name) || n.Name != strings.TrimSpace(n.Name) || n.Name == "" {
			t.Fatalf("bad neuron list %v", c.Neurons)
		}
		ids[n.ID] = true
	}
	for i, s := range c.Synapses {
		if !ids[s.Pre] || !ids[s.Post] || s.Weight == 0 || s.Weight != s.Chemical+s.Electrical || len(s.Lines) == 0 {
			t.Fatalf("bad synapse %+v", s)
		}
		if i > 0 {
			p := c.Synapses[i-1]
			if p.Pre > s.Pre || (p.Pre == s.Pre && p.Post >= s.Post) {
				t.Fatalf("synapses not sorted or duplicated at %d", i)
			}
		}
	}
}

// TestMutatedInputNeverPanicsAndIsRefusedOrWellFormed mutates a good file at
// random (bytes, fields, lines): every result is either a refusal naming lines
// of the input or a well-formed connectome.
func TestMutatedInputNeverPanicsAndIsRefusedOrWellFormed(t *testing.T) {
	r := rand.New(rand.NewPCG(42, 9))
	alphabet := []byte(" ,\"\n\r\t-.0123456789ABCxyz\x00\xff")
	refused, accepted := 0, 0
	for i := range 3000 {
		b := []byte(small)
		for range 1 + r.IntN(4) {
			switch r.IntN(4) {
			case 0: // replace a byte
				b[r.IntN(len(b))] = alphabet[r.IntN(len(alphabet))]
			case 1: // insert a byte
				at := r.IntN(len(b) + 1)
				b = slices.Insert(b, at, alphabet[r.IntN(len(alphabet))])
			case 2: // delete a span
				at := r.IntN(len(b))
				b = slices.Delete(b, at, min(len(b), at+1+r.IntN(8)))
			case 3: // duplicate a line
				lines := bytes.Split(b, []byte("\n"))
				l := lines[r.IntN(len(lines))]
				b = append(append(b, '\n'), l...)
			}
			if len(b) == 0 {
				b = []byte{','}
			}
		}
		nlines := bytes.Count(b, []byte("\n")) + 1
		c, err := Parse(bytes.NewReader(b))
		if err != nil {
			refused++
			var fe *FileError
			if !errors.As(err, &fe) || len(fe.Rows) == 0 || c != nil {
				t.Fatalf("case %d %q: %v (%T), %v", i, b, err, err, c)
			}
			for _, row := range fe.Rows {
				if row.Line < 1 || row.Line > nlines {
					t.Fatalf("case %d %q: line %d outside 1..%d: %v", i, b, row.Line, nlines, err)
				}
			}
			continue
		}
		accepted++
		checkWellFormed(t, c)
	}
	if refused < 1000 || accepted < 50 {
		t.Fatalf("mutations refused %d, accepted %d: the test does not explore both sides", refused, accepted)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(small))
	f.Add([]byte("Source,Target,Weight,Type\nA,B,1,electrical\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := Parse(bytes.NewReader(b))
		if err != nil {
			var fe *FileError
			if !errors.As(err, &fe) || c != nil {
				t.Fatalf("%v", err)
			}
			return
		}
		checkWellFormed(t, c)
	})
}

// real loads the Cook et al. edge list fetched by scripts/connectome.sh.
func real(t *testing.T) (*Connectome, []byte) {
	t.Helper()
	b, err := os.ReadFile(DefaultPath())
	if err != nil {
		t.Fatalf("the Cook et al. edge list: %v; %s", err, FetchHint)
	}
	c, err := Parse(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return c, b
}

func TestTheCookConnectome(t *testing.T) {
	c, _ := real(t)
	if c.SHA256 != "142693f17556148d7f962835b18ac6dd5af18b7467eef61815ebc1dd5474c0ca" {
		t.Fatalf("sha256 %s: not the file scripts/connectome.sh pins", c.SHA256)
	}
	want := Stats{Rows: 7379, ChemicalRows: 4681, ElectricalRows: 2698, GapMirrored: 6, Merged: 754, SelfLoops: 46}
	if c.Stats != want {
		t.Errorf("stats %+v, want %+v", c.Stats, want)
	}
	if len(c.Synapses) != 6631 {
		t.Errorf("%d synapses, want 6631 (4681 chemical and 2698+6 gap-junction directions, 754 pairs merged)", len(c.Synapses))
	}
	if len(c.Neurons) != 448 {
		t.Errorf("%d neurons, want 448", len(c.Neurons))
	}
	checkWellFormed(t, c)
	out, in := c.Degrees()
	for _, hub := range []string{"AVAL", "AVAR"} {
		id, ok := c.ID(hub)
		if !ok {
			t.Fatalf("no %s", hub)
		}
		if d := out[id] + in[id]; d < 140 || d > 200 {
			t.Errorf("%s: degree %d (out %d, in %d), want about 150", hub, d, out[id], in[id])
		}
	}
	t.Logf("%d neurons, %d synapses, %+v", len(c.Neurons), len(c.Synapses), c.Stats)
}

func TestShuffledFileGivesTheSameConnectome(t *testing.T) {
	c, b := real(t)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	body := slices.Clone(lines[1:])
	r := rand.New(rand.NewPCG(3, 4))
	r.Shuffle(len(body), func(i, j int) { body[i], body[j] = body[j], body[i] })
	d, err := Parse(strings.NewReader(lines[0] + "\n" + strings.Join(body, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(c.Neurons, d.Neurons) {
		t.Fatal("shuffling the rows changed the neurons or their ids")
	}
	strip := func(ss []Synapse) []Synapse {
		out := slices.Clone(ss)
		for i := range out {
			out[i].Lines = nil
		}
		return out
	}
	if !slices.EqualFunc(strip(c.Synapses), strip(d.Synapses), func(a, b Synapse) bool {
		return a.Pre == b.Pre && a.Post == b.Post && a.Weight == b.Weight && a.Chemical == b.Chemical && a.Electrical == b.Electrical
	}) {
		t.Fatal("shuffling the rows changed the synapses")
	}
	if c.Stats != d.Stats {
		t.Fatalf("stats %+v then %+v", c.Stats, d.Stats)
	}
}
