package server

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestFuzzMutations runs the fuzz targets on mutations of their seeds
// drawn from a fixed seed: the part of fuzzing that `make test`, and so
// CI, runs. Go's coverage-guided fuzzer (`make fuzz`) rebuilds every
// dependency instrumented (about ten minutes of two cores from a cold
// cache), more than CI can spend; these inputs need no rebuild, and the
// same ones come every run, so a failure is repeatable.
// MOCKERNETES_FUZZ_MUTATIONS (inputs per target, default 300) and
// MOCKERNETES_FUZZ_SEED (default 1) draw other ones.
func TestFuzzMutations(t *testing.T) {
	n := envInt(t, "MOCKERNETES_FUZZ_MUTATIONS", 300)
	seed := envInt(t, "MOCKERNETES_FUZZ_SEED", 1)
	bodies := func(seeds []string) [][]byte {
		out := make([][]byte, len(seeds))
		for i, s := range seeds {
			out[i] = []byte(s)
		}
		return out
	}
	for _, target := range []struct {
		name  string
		seeds [][]byte
		setup func(testing.TB, *fuzzServer)
		run   func(*testing.T, *fuzzServer, uint8, []byte)
	}{
		{"create", bodies(seedBodies), nil, fuzzCreate},
		{"patch", bodies(patchSeeds), newPatchTarget, fuzzPatch},
		{"admin", bodies(adminSeeds), nil, fuzzAdmin},
	} {
		t.Run(target.name, func(t *testing.T) {
			t.Parallel()
			s := newFuzzServer(t)
			if target.setup != nil {
				target.setup(t, s)
			}
			m := newMutator(uint64(seed))
			for i := range n {
				which := uint8(m.r.IntN(256))
				body := m.mutate(target.seeds[i%len(target.seeds)], target.seeds[m.r.IntN(len(target.seeds))])
				reportInput(t, i, func() { target.run(t, s, which, body) }, which, body)
			}
		})
	}
	t.Run("list", func(t *testing.T) {
		t.Parallel()
		s := newFuzzServer(t)
		m := newMutator(uint64(seed))
		for i := range n {
			var params [4]string
			for j, p := range listSeeds[i%len(listSeeds)] {
				if m.r.IntN(2) == 0 {
					p = string(m.mutate([]byte(p), []byte(listSeeds[m.r.IntN(len(listSeeds))][j])))
				}
				params[j] = p
			}
			reportInput(t, i, func() { fuzzList(t, s, params[0], params[1], params[2], params[3]) }, fmt.Sprintf("%q", params))
		}
	})
}

// reportInput runs one input; if it fails the test (t.Fatal included),
// the input is logged, quoted, to be added to the seeds.
func reportInput(t *testing.T, i int, run func(), input ...any) {
	t.Helper()
	defer func() {
		if t.Failed() {
			quoted := make([]string, len(input))
			for j, in := range input {
				quoted[j] = fmt.Sprintf("%v", in)
				if b, ok := in.([]byte); ok {
					quoted[j] = strconv.Quote(string(b))
				}
			}
			t.Logf("mutation %d failed; its input: %s", i, strings.Join(quoted, ", "))
		}
	}()
	run()
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// mutator changes inputs the way a fuzzer's mutator does, without its
// coverage guidance: bit flips, inserted bytes and syntax tokens, deleted,
// repeated and spliced ranges, truncation.
type mutator struct{ r *rand.Rand }

func newMutator(seed uint64) *mutator {
	return &mutator{r: rand.New(rand.NewPCG(seed, 0x6d6f636b))}
}

// mutationTokens are pieces of the syntaxes the server parses: JSON, YAML,
// patches' directives and paths, selectors.
var mutationTokens = []string{
	"{", "}", "[", "]", `"`, ":", ",", "null", "true", "0", "-1", "1e309", "18446744073709551616", `"\u0000"`, "\xff", "\xc3",
	`"$patch":"replace"`, `"$retainKeys":[]`, `"$setElementOrder/data":[]`, `"$deleteFromPrimitiveList/finalizers":["a"]`,
	`"apiVersion":"v1"`, `"kind":"Pod"`, `"metadata":{}`, `"name":"n"`, `"data":{}`, `"spec":{}`, `"status":{}`,
	`"op":"add"`, `"op":"remove"`, `"op":"test"`, `"op":"copy"`, `"op":"move"`, `"path":"/"`, `"from":"/data"`, "~1", "~0", "/-",
	"\n", ": ", "- ", "&a ", "*a", "!!binary ", "---\n", "? ",
	" in (", " notin (", "!=", "==", "=", "!", ")", "metadata.name", "spec.nodeName",
}

func (m *mutator) mutate(in, other []byte) []byte {
	out := bytes.Clone(in)
	for range 1 + m.r.IntN(4) {
		i := 0
		if len(out) > 0 {
			i = m.r.IntN(len(out) + 1)
		}
		switch m.r.IntN(7) {
		case 0: // flip a bit
			if len(out) > 0 {
				j := m.r.IntN(len(out))
				out[j] ^= 1 << m.r.IntN(8)
			}
		case 1: // insert a byte
			out = append(out[:i], append([]byte{byte(m.r.IntN(256))}, out[i:]...)...)
		case 2: // insert a token
			tok := mutationTokens[m.r.IntN(len(mutationTokens))]
			out = append(out[:i], append([]byte(tok), out[i:]...)...)
		case 3: // delete a range
			if i < len(out) {
				out = append(out[:i], out[i+m.r.IntN(len(out)-i)+1:]...)
			}
		case 4: // repeat a range
			if i < len(out) {
				j := i + m.r.IntN(len(out)-i) + 1
				out = append(out[:j], append(bytes.Clone(out[i:j]), out[j:]...)...)
			}
		case 5: // truncate
			out = out[:i]
		case 6: // splice in the tail of another input
			if len(other) > 0 {
				out = append(out[:i], other[m.r.IntN(len(other)):]...)
			}
		}
	}
	if len(out) > 64<<10 {
		out = out[:64<<10]
	}
	return out
}
