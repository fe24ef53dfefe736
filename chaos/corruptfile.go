package chaos

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// partitionDirRE matches a partition directory of a broker's data directory: TOPIC-N.
var partitionDirRE = regexp.MustCompile(`^(.+)-([0-9]+)$`)

// corruptFile stops (param "down" kill: kills) broker node, damages one file of one of its
// partitions and restarts it. The damage is not undone: like a disk's bit rot it is what the
// broker must detect (by CRC32C, on recovery or when it first reads the batch) and recover
// from by truncation and re-replication.
func (d *Local) corruptFile(ctx context.Context, reg *Registry, id int64, f Fault, node int32, p Process, dataDir string) error {
	rng := rand.New(rand.NewPCG(uint64(id), uint64(node)))
	partDir, err := pickPartitionDir(f, dataDir, rng)
	if err != nil {
		return fmt.Errorf("chaos: corrupt-file broker %d: %w", node, err)
	}
	rec := processRecord(id, "corrupt-file", node, p)
	rec.Undo = "restart"
	if f.param("down", "stop") == "kill" {
		err = p.Kill()
	} else {
		err = p.Stop()
	}
	if err != nil && p.Running() {
		return fmt.Errorf("chaos: corrupt-file: stop broker %d: %w", node, err)
	}
	file, what, derr := damage(f, partDir, rng)
	rec.Path, rec.Object = file, what
	seq := reg.Add(rec, func(ctx context.Context) error {
		if p.Running() {
			return nil
		}
		return p.Restart(ctx)
	})
	if derr != nil {
		derr = fmt.Errorf("chaos: corrupt-file broker %d: %w", node, derr)
	}
	return errors.Join(derr, reg.Undo(ctx, seq))
}

// pickPartitionDir returns the directory of the partition f names (its target's, or params
// topic and partition), else of a random partition of a topic that is not internal.
func pickPartitionDir(f Fault, dataDir string, rng *rand.Rand) (string, error) {
	topic, part := f.param("topic", ""), -1
	if s := f.param("partition", ""); s != "" {
		part, _ = strconv.Atoi(s)
	}
	if t := f.Target; (t.Sel == SelLeader || t.Sel == SelFollowers || t.Sel == SelFollower) && t.Topic != "" {
		topic, part = t.Topic, int(t.Partition)
	}
	ents, err := os.ReadDir(dataDir)
	if err != nil {
		return "", err
	}
	var cands []string
	for _, e := range ents {
		m := partitionDirRE.FindStringSubmatch(e.Name())
		if !e.IsDir() || m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[2])
		switch {
		case topic == "" && strings.HasPrefix(m[1], "__"):
		case topic != "" && m[1] != topic:
		case part >= 0 && n != part:
		default:
			cands = append(cands, filepath.Join(dataDir, e.Name()))
		}
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("no partition directory for topic %q partition %d in %s", topic, part, dataDir)
	}
	slices.Sort(cands)
	return cands[rng.IntN(len(cands))], nil
}

// damage damages one file of the partition in dir as f says and returns the file and what
// was done to it.
func damage(f Fault, dir string, rng *rand.Rand) (string, string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", "", err
	}
	var bases []string
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), ".log"); ok {
			bases = append(bases, name)
		}
	}
	if len(bases) == 0 {
		return "", "", fmt.Errorf("%s holds no segment", dir)
	}
	slices.Sort(bases)
	seg := bases[len(bases)-1]
	if f.param("segment", "closed") == "closed" && len(bases) > 1 {
		seg = bases[rng.IntN(len(bases)-1)]
	}
	suffix := "." + f.param("file", "log")
	path := filepath.Join(dir, seg+suffix)
	b, err := os.ReadFile(path)
	if err != nil {
		return path, "", err
	}
	if len(b) == 0 {
		return path, "nothing: the file is empty", nil
	}
	var what string
	if f.param("mode", "bitflip") == "truncate" {
		cut := len(b)/2 + rng.IntN(len(b)-len(b)/2)
		what = fmt.Sprintf("truncated from %d to %d bytes", len(b), cut)
		return path, what, os.Truncate(path, int64(cut))
	}
	flips := f.paramInt("flips", 8)
	if suffix == ".log" {
		batches := batchSpans(b)
		if len(batches) == 0 {
			return path, "nothing: no whole batch", nil
		}
		hit := map[int]bool{}
		for range flips {
			i := rng.IntN(len(batches))
			hit[i] = true
			// Inside the part the CRC32C covers (attributes to the end): what the CRC must catch.
			sp := batches[i]
			pos := sp[0] + 21 + rng.IntN(sp[1]-21)
			b[pos] ^= 1 << rng.IntN(8)
		}
		what = fmt.Sprintf("flipped %d bits in %d of %d batches", flips, len(hit), len(batches))
	} else {
		for range flips {
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		}
		what = fmt.Sprintf("flipped %d bits", flips)
	}
	return path, what, os.WriteFile(path, b, 0o644)
}

// batchSpans returns the [start, size] of each whole v2 batch in a segment file.
func batchSpans(b []byte) [][2]int {
	var out [][2]int
	for pos := 0; pos+61 <= len(b); {
		size := 12 + int(int32(binary.BigEndian.Uint32(b[pos+8:])))
		if size < 61 || pos+size > len(b) {
			break
		}
		out = append(out, [2]int{pos, size})
		pos += size
	}
	return out
}
