package broker

// AlterUserScramCredentials (key 51), version 0.
//
// Behaviour: creates, replaces and deletes users' SCRAM-SHA-256/512 credentials (KIP-554). The
// client sends a salt, an iteration count and the salted password; the active controller
// keeps the salt, iterations and RFC 5802 stored and server keys in the metadata image (a
// broker that is not the active controller forwards the request there and answers once its own
// image has the change), and every broker checks SCRAM logins against its image. One result
// per user named: a user with any invalid change gets none of its changes, with
// UNACCEPTABLE_CREDENTIAL (empty name, salt or password; iterations outside [4096, 16384]),
// UNSUPPORTED_SASL_MECHANISM, DUPLICATE_RESOURCE (a user and mechanism named twice) or
// RESOURCE_NOT_FOUND (deleting what does not exist). Differences from Kafka: there is no
// authorizer, so any connection may alter credentials (Kafka requires ALTER on CLUSTER); a
// broker without a controller quorum (no --voters) answers UNSUPPORTED_VERSION.

import (
	"context"
	"errors"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/controller"
)

func handleAlterUserScramCredentials(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.AlterUserSCRAMCredentialsRequest)
	var users []string
	for _, d := range r.Deletions {
		users = append(users, d.Name)
	}
	for _, u := range r.Upsertions {
		users = append(users, u.Name)
	}
	answer := func(code int16, msg string, perUser map[string]error) *kmsg.AlterUserSCRAMCredentialsResponse {
		resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
		seen := map[string]bool{}
		for _, u := range users {
			if seen[u] {
				continue
			}
			seen[u] = true
			res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
			res.User, res.ErrorCode = u, code
			if code != 0 {
				m := msg
				res.ErrorMessage = &m
			}
			if err := perUser[u]; err != nil {
				res.ErrorCode = controller.ErrorCode(err)
				m := err.Error()
				res.ErrorMessage = &m
			}
			resp.Results = append(resp.Results, res)
		}
		return resp
	}
	cl := c.b.cl
	out, err := forward(cl, c.controllerPlane, r, func(resp *kmsg.AlterUserSCRAMCredentialsResponse) []int16 {
		var codes []int16
		for _, res := range resp.Results {
			codes = append(codes, res.ErrorCode)
		}
		return codes
	})
	if err == nil {
		cl.waitForScram(r, out)
		return out, nil
	}
	if !errors.Is(err, errLocalController) {
		code, msg := unavailable(err)
		return answer(code, msg, nil), nil
	}
	var dels []controller.ScramDeletion
	for _, d := range r.Deletions {
		dels = append(dels, controller.ScramDeletion{Name: d.Name, Mechanism: d.Mechanism})
	}
	var ups []controller.ScramUpsertion
	for _, u := range r.Upsertions {
		ups = append(ups, controller.ScramUpsertion{Name: u.Name, Mechanism: u.Mechanism, Iterations: u.Iterations, Salt: u.Salt, SaltedPassword: u.SaltedPassword})
	}
	results, err := cl.ctl.AlterScramCredentials(dels, ups)
	if err != nil {
		return answer(controller.ErrorCode(err), err.Error(), nil), nil
	}
	return answer(0, "", results), nil
}

// waitForScram waits, up to adminWait, until the local image shows the successful changes of
// a forwarded alteration, so a client can log in here as soon as the answer arrives.
func (cl *cluster) waitForScram(r *kmsg.AlterUserSCRAMCredentialsRequest, resp *kmsg.AlterUserSCRAMCredentialsResponse) {
	ok := map[string]bool{}
	for _, res := range resp.Results {
		ok[res.User] = res.ErrorCode == 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminWait)
	defer cancel()
	cl.ctl.WaitFor(ctx, func(img *controller.Image) bool {
		for _, d := range r.Deletions {
			if ok[d.Name] && img.Scram[d.Name][d.Mechanism] != nil {
				return false
			}
		}
		for _, u := range r.Upsertions {
			if ok[u.Name] && img.Scram[u.Name][u.Mechanism] == nil {
				return false
			}
		}
		return true
	})
}
