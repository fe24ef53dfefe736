package controller

import (
	"encoding/json"
	"testing"
)

// TestScramRecordsApply: valid upsertions and deletions become records that every node applies
// alike, invalid ones leave the user untouched, and the credentials survive a snapshot.
func TestScramRecordsApply(t *testing.T) {
	img := emptyImage()
	salted := make([]byte, 64)
	recs, results := scramRecords(img, nil, []ScramUpsertion{
		{Name: "alice", Mechanism: ScramSHA512, Iterations: 4096, Salt: []byte("s"), SaltedPassword: salted},
		{Name: "alice", Mechanism: ScramSHA256, Iterations: 8192, Salt: []byte("s"), SaltedPassword: salted[:32]},
		{Name: "bob", Mechanism: ScramSHA512, Iterations: 100, Salt: []byte("s"), SaltedPassword: salted},
	})
	if results["alice"] != nil || results["bob"] == nil || len(recs) != 2 {
		t.Fatalf("results %v, %d records", results, len(recs))
	}
	next, err := applyRecords(img, 7, recs)
	if err != nil {
		t.Fatal(err)
	}
	if len(next.Scram["alice"]) != 2 || next.Scram["bob"] != nil || len(img.Scram) != 0 {
		t.Fatalf("image %v (old image %v must be unchanged)", next.Scram, img.Scram)
	}
	stored, server := ScramKeys(ScramSHA512, salted)
	c := next.Scram["alice"][ScramSHA512]
	if string(c.StoredKey) != string(stored) || string(c.ServerKey) != string(server) || c.Iterations != 4096 {
		t.Fatalf("credential %+v", c)
	}
	b, err := json.Marshal(next)
	if err != nil {
		t.Fatal(err)
	}
	var back Image
	if err := json.Unmarshal(b, &back); err != nil || len(back.Scram["alice"]) != 2 {
		t.Fatalf("snapshot round trip: %v %v", err, back.Scram)
	}
	recs, results = scramRecords(next, []ScramDeletion{{Name: "alice", Mechanism: ScramSHA512}, {Name: "alice", Mechanism: ScramSHA512}}, nil)
	if results["alice"] == nil || len(recs) != 0 {
		t.Fatalf("a credential deleted twice in one request: %v, %d records", results, len(recs))
	}
	recs, _ = scramRecords(next, []ScramDeletion{{Name: "alice", Mechanism: ScramSHA512}, {Name: "alice", Mechanism: ScramSHA256}}, nil)
	last, err := applyRecords(next, 8, recs)
	if err != nil || last.Scram["alice"] != nil || len(next.Scram["alice"]) != 2 {
		t.Fatalf("after deleting both: %v %v", err, last.Scram)
	}
	if _, err := applyRecords(last, 9, recs); err == nil {
		t.Fatal("removing a credential that does not exist applied")
	}
}
