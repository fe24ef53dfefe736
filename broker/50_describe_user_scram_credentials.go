package broker

// DescribeUserScramCredentials (key 50), version 0.
//
// Behaviour: lists the SCRAM mechanisms and iteration counts of the named users, or of every
// user when Users is null (KIP-554), from this broker's metadata image. A user named twice is
// DUPLICATE_RESOURCE, a user without credentials RESOURCE_NOT_FOUND. Never the salt or keys.
// Differences from Kafka: no authorizer (Kafka requires DESCRIBE on CLUSTER).

import (
	"maps"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleDescribeUserScramCredentials(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.DescribeUserSCRAMCredentialsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
	creds := c.b.cl.ctl.Image().Scram
	names := slices.Sorted(maps.Keys(creds))
	if r.Users != nil {
		names = nil
		for _, u := range r.Users {
			names = append(names, u.Name)
		}
	}
	count := map[string]int{}
	for _, n := range names {
		count[n]++
	}
	fail := func(res *kmsg.DescribeUserSCRAMCredentialsResponseResult, e *kerr.Error, msg string) {
		res.ErrorCode, res.ErrorMessage = e.Code, &msg
	}
	for _, n := range names {
		res := kmsg.NewDescribeUserSCRAMCredentialsResponseResult()
		res.User = n
		switch {
		case count[n] > 1:
			fail(&res, kerr.DuplicateResource, "user named more than once in the request")
		case len(creds[n]) == 0:
			fail(&res, kerr.ResourceNotFound, "attempt to describe a user credential that does not exist")
		default:
			for _, m := range slices.Sorted(maps.Keys(creds[n])) {
				ci := kmsg.NewDescribeUserSCRAMCredentialsResponseResultCredentialInfo()
				ci.Mechanism, ci.Iterations = m, creds[n][m].Iterations
				res.CredentialInfos = append(res.CredentialInfos, ci)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return resp, nil
}
