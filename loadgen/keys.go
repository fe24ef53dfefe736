package loadgen

import (
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/kchaos/kchaos/workloads"
)

// keyChooser picks record keys for one producer; nil keys mean no key.
type keyChooser struct {
	mode  string // "none", "nano", "round-robin", "uniform", "zipf"
	keys  [][]byte
	next  int
	rng   *rand.Rand
	zipf  *rand.Zipf
	clock func() time.Time
}

// newKeyChooser builds the key choice of a workload: Keys when set, else keyDistributor.
func newKeyChooser(rc *workloads.RunConfig, rng *rand.Rand) *keyChooser {
	k := &keyChooser{rng: rng, clock: time.Now}
	distinct, dist := 0, ""
	switch {
	case rc.Keys != nil:
		distinct, dist = rc.Keys.Distinct, rc.Keys.Distribution
	case rc.KeyDistributor == "KEY_ROUND_ROBIN":
		distinct, dist = 10000, workloads.DistRoundRobin
	case rc.KeyDistributor == "RANDOM_NANO":
		k.mode = "nano"
		return k
	default:
		k.mode = "none"
		return k
	}
	k.mode = dist
	k.keys = make([][]byte, distinct)
	for i := range k.keys {
		k.keys[i] = []byte("k" + strconv.Itoa(i))
	}
	if dist == workloads.DistZipf {
		k.zipf = rand.NewZipf(rng, rc.Keys.S, 1, uint64(distinct-1))
	}
	return k
}

// Next returns the next key.
func (k *keyChooser) Next() []byte {
	switch k.mode {
	case "none":
		return nil
	case "nano":
		return []byte(strconv.FormatInt(k.clock().UnixNano(), 10))
	case workloads.DistRoundRobin:
		key := k.keys[k.next]
		k.next = (k.next + 1) % len(k.keys)
		return key
	case workloads.DistZipf:
		return k.keys[k.zipf.Uint64()]
	default:
		return k.keys[k.rng.IntN(len(k.keys))]
	}
}
