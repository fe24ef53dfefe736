package controller

// SCRAM credentials in the metadata image, as KRaft keeps them (KIP-554): AlterUserScramCredentials
// becomes ScramCredential and RemoveScramCredential records (Kafka's UserScramCredentialRecord
// and RemoveUserScramCredentialRecord), and every broker authenticates SCRAM logins from its
// own image. A record carries the salt, the iteration count and the stored and server keys of
// RFC 5802, never the password nor the salted password.

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"hash"
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// SCRAM mechanisms by Kafka's ScramMechanism numbers.
const (
	ScramSHA256 int8 = 1
	ScramSHA512 int8 = 2
)

// ScramMechanismName returns the SASL name of a mechanism number, or "" for an unknown one.
func ScramMechanismName(m int8) string {
	switch m {
	case ScramSHA256:
		return "SCRAM-SHA-256"
	case ScramSHA512:
		return "SCRAM-SHA-512"
	}
	return ""
}

// Kafka's bounds on a credential's iteration count (ScramMechanism.minIterations and the
// controller's maximum).
const (
	ScramMinIterations = 4096
	ScramMaxIterations = 16384
)

// Record types of SCRAM credentials.
const (
	TypeScramCredential       = "ScramCredential"
	TypeRemoveScramCredential = "RemoveScramCredential"
)

// ScramCredential is a user's credential for one mechanism, as RFC 5802 has a server keep it.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"storedKey"`
	ServerKey  []byte `json:"serverKey"`
	Iterations int32  `json:"iterations"`
}

// ScramCredentialRecord sets a user's credential for a mechanism.
type ScramCredentialRecord struct {
	Name      string `json:"name"`
	Mechanism int8   `json:"mechanism"`
	ScramCredential
}

// RemoveScramCredentialRecord removes a user's credential for a mechanism.
type RemoveScramCredentialRecord struct {
	Name      string `json:"name"`
	Mechanism int8   `json:"mechanism"`
}

// applyScram applies a SCRAM record to next. Image.Scram's inner maps are shared with older
// images: a change replaces the user's map.
func applyScram(next *Image, r Record) error {
	var name string
	var mech int8
	switch {
	case r.Type == TypeScramCredential && r.ScramCredential != nil:
		name, mech = r.ScramCredential.Name, r.ScramCredential.Mechanism
	case r.Type == TypeRemoveScramCredential && r.RemoveScramCredential != nil:
		name, mech = r.RemoveScramCredential.Name, r.RemoveScramCredential.Mechanism
	default:
		return fmt.Errorf("missing body")
	}
	if ScramMechanismName(mech) == "" {
		return fmt.Errorf("unknown SCRAM mechanism %d", mech)
	}
	user := maps.Clone(next.Scram[name])
	if user == nil {
		user = map[int8]*ScramCredential{}
	}
	if r.ScramCredential != nil {
		c := r.ScramCredential.ScramCredential
		user[mech] = &c
	} else {
		if user[mech] == nil {
			return fmt.Errorf("user %q has no %s credential", name, ScramMechanismName(mech))
		}
		delete(user, mech)
	}
	if next.Scram == nil {
		next.Scram = map[string]map[int8]*ScramCredential{}
	}
	if len(user) == 0 {
		delete(next.Scram, name)
	} else {
		next.Scram[name] = user
	}
	return nil
}

// ScramUpsertion sets a user's credential from a client-salted password (KIP-554).
type ScramUpsertion struct {
	Name           string
	Mechanism      int8
	Iterations     int32
	Salt           []byte
	SaltedPassword []byte
}

// ScramDeletion removes a user's credential for a mechanism.
type ScramDeletion struct {
	Name      string
	Mechanism int8
}

// AlterScramCredentials applies deletions and upsertions as one batch and returns each named
// user's error (nil when its changes were applied), as AlterUserScramCredentials answers per
// user: a user with any invalid change gets no change at all. Errors: UNACCEPTABLE_CREDENTIAL
// (empty name, salt or password; iterations outside [4096, 16384]), UNSUPPORTED_SASL_MECHANISM,
// DUPLICATE_RESOURCE (a user and mechanism named twice), RESOURCE_NOT_FOUND (deleting what
// does not exist), NOT_CONTROLLER.
func (c *Controller) AlterScramCredentials(dels []ScramDeletion, ups []ScramUpsertion) (map[string]error, error) {
	var results map[string]error
	_, err := c.decide(func(img *Image) ([]Record, error) {
		var recs []Record
		recs, results = scramRecords(img, dels, ups)
		return recs, nil
	})
	return results, err
}

// scramRecords validates an alteration against img and returns the records of the users
// whose changes are all valid, and every named user's error.
func scramRecords(img *Image, dels []ScramDeletion, ups []ScramUpsertion) ([]Record, map[string]error) {
	results := map[string]error{}
	seen := map[string]map[int8]int{}
	note := func(name string, mech int8) {
		if seen[name] == nil {
			seen[name] = map[int8]int{}
		}
		seen[name][mech]++
		if _, ok := results[name]; !ok {
			results[name] = nil
		}
	}
	for _, d := range dels {
		note(d.Name, d.Mechanism)
	}
	for _, u := range ups {
		note(u.Name, u.Mechanism)
	}
	fail := func(name string, err error) {
		if results[name] == nil {
			results[name] = err
		}
	}
	check := func(name string, mech int8) {
		switch {
		case name == "":
			fail(name, errorf(kerr.UnacceptableCredential, "username must not be empty"))
		case ScramMechanismName(mech) == "":
			fail(name, errorf(kerr.UnsupportedSaslMechanism, "unknown SCRAM mechanism %d", mech))
		case seen[name][mech] > 1:
			fail(name, errorf(kerr.DuplicateResource, "a user credential cannot be altered twice in the same request"))
		}
	}
	for _, d := range dels {
		check(d.Name, d.Mechanism)
		if img.Scram[d.Name][d.Mechanism] == nil {
			fail(d.Name, errorf(kerr.ResourceNotFound, "attempt to delete a user credential that does not exist"))
		}
	}
	for _, u := range ups {
		check(u.Name, u.Mechanism)
		switch {
		case u.Iterations < ScramMinIterations:
			fail(u.Name, errorf(kerr.UnacceptableCredential, "too few iterations: %d (at least %d)", u.Iterations, ScramMinIterations))
		case u.Iterations > ScramMaxIterations:
			fail(u.Name, errorf(kerr.UnacceptableCredential, "too many iterations: %d (at most %d)", u.Iterations, ScramMaxIterations))
		case len(u.Salt) == 0:
			fail(u.Name, errorf(kerr.UnacceptableCredential, "salt must not be empty"))
		case len(u.SaltedPassword) == 0:
			fail(u.Name, errorf(kerr.UnacceptableCredential, "salted password must not be empty"))
		}
	}
	var recs []Record
	for _, d := range dels {
		if results[d.Name] == nil {
			recs = append(recs, Record{Type: TypeRemoveScramCredential, RemoveScramCredential: &RemoveScramCredentialRecord{Name: d.Name, Mechanism: d.Mechanism}})
		}
	}
	for _, u := range ups {
		if results[u.Name] == nil {
			stored, server := ScramKeys(u.Mechanism, u.SaltedPassword)
			recs = append(recs, Record{Type: TypeScramCredential, ScramCredential: &ScramCredentialRecord{Name: u.Name, Mechanism: u.Mechanism,
				ScramCredential: ScramCredential{Salt: slices.Clone(u.Salt), StoredKey: stored, ServerKey: server, Iterations: u.Iterations}}})
		}
	}
	return recs, results
}

// ScramKeys derives RFC 5802's StoredKey (H(HMAC(salted, "Client Key"))) and ServerKey
// (HMAC(salted, "Server Key")) for mechanism m.
func ScramKeys(m int8, salted []byte) (stored, server []byte) {
	h := sha256.New
	if m == ScramSHA512 {
		h = sha512.New
	}
	mac := func(key []byte, msg string) []byte {
		mc := hmac.New(h, key)
		mc.Write([]byte(msg))
		return mc.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	var sum hash.Hash = h()
	sum.Write(clientKey)
	return sum.Sum(nil), mac(salted, "Server Key")
}
