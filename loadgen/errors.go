package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/IBM/sarama"
	"github.com/kchaos/kchaos/history"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrorName names err the way the history and the error series do: the Kafka error name
// (NOT_ENOUGH_REPLICAS, REQUEST_TIMED_OUT, ...) when the broker sent one, otherwise a short
// client-side name (TIMEOUT, CONNECTION_LOST, CLIENT_CLOSED, CANCELED, or the error text).
func ErrorName(err error) string {
	if err == nil {
		return ""
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Message
	}
	var se sarama.KError
	if errors.As(err, &se) {
		if k, ok := kerr.ErrorForCode(int16(se)).(*kerr.Error); ok {
			return k.Message
		}
	}
	for _, name := range driverErrors {
		if n, _ := name(err); n != "" {
			return n
		}
	}
	switch {
	case errors.Is(err, kgo.ErrRecordTimeout), errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return "TIMEOUT"
	case errors.Is(err, kgo.ErrRecordRetries):
		return "RETRIES_EXHAUSTED"
	case errors.Is(err, kgo.ErrClientClosed), errors.Is(err, sarama.ErrClosedClient), errors.Is(err, sarama.ErrShuttingDown):
		return "CLIENT_CLOSED"
	case errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrAborting):
		return "CANCELED"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE), errors.Is(err, sarama.ErrOutOfBrokers),
		errors.Is(err, sarama.ErrNotConnected), errors.Is(err, net.ErrClosed):
		return "CONNECTION_LOST"
	case errors.Is(err, sarama.ErrMessageSizeTooLarge), isSaramaTooLarge(err):
		return "MESSAGE_TOO_LARGE"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return strings.TrimSpace(s)
}

// isSaramaTooLarge reports Sarama's refusal of a record over Producer.MaxMessageBytes,
// a ConfigurationError before anything is sent.
func isSaramaTooLarge(err error) bool {
	var ce sarama.ConfigurationError
	return errors.As(err, &ce) && strings.Contains(string(ce), "larger than configured Producer.MaxMessageBytes")
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// rejectedBeforeAppend are Kafka errors with which a broker refuses a produce request
// before appending anything. NOT_LEADER_OR_FOLLOWER is not one: an acks=all request waiting
// for replication gets it after the append when leadership moves, and a follower that had
// copied the batch keeps it as the new leader.
var rejectedBeforeAppend = map[string]bool{
	"NOT_ENOUGH_REPLICAS":                   true,
	"MESSAGE_TOO_LARGE":                     true,
	"RECORD_LIST_TOO_LARGE":                 true,
	"INVALID_RECORD":                        true,
	"CORRUPT_MESSAGE":                       true,
	"INVALID_REQUIRED_ACKS":                 true,
	"TOPIC_AUTHORIZATION_FAILED":            true,
	"CLUSTER_AUTHORIZATION_FAILED":          true,
	"UNKNOWN_TOPIC_OR_PARTITION":            true,
	"INVALID_TOPIC_EXCEPTION":               true,
	"UNSUPPORTED_FOR_MESSAGE_FORMAT":        true,
	"INVALID_PRODUCER_EPOCH":                true,
	"OUT_OF_ORDER_SEQUENCE_NUMBER":          true,
	"UNKNOWN_PRODUCER_ID":                   true,
	"TRANSACTIONAL_ID_AUTHORIZATION_FAILED": true,
}

// SendOutcome classifies a failed send for the history. A send is "fail" only when it
// definitely did not take effect: the client made exactly one attempt (retries 0) and the
// broker refused it before appending, or the client never sent it. Everything else —
// timeouts, lost connections, NOT_ENOUGH_REPLICAS_AFTER_APPEND, errors after retries
// (an earlier attempt may have been appended) — is "info": indeterminate, never guessed.
func SendOutcome(err error, retries int) history.Type {
	name := ErrorName(err)
	if name == "CLIENT_CLOSED" && errors.Is(err, kgo.ErrClientClosed) {
		return history.Info
	}
	if retries == 0 && rejectedBeforeAppend[name] {
		return history.Fail
	}
	return history.Info
}

// IsKafkaError reports whether err carries an error code from a broker.
func IsKafkaError(err error) bool {
	var ke *kerr.Error
	var se sarama.KError
	if errors.As(err, &ke) || errors.As(err, &se) {
		return true
	}
	for _, name := range driverErrors {
		if _, broker := name(err); broker {
			return true
		}
	}
	return false
}

// driverErrors name the errors of the kafka-go and confluent drivers' libraries, registered
// by their files: the history's name for err ("" when the library did not make it) and
// whether it carries an error code from a broker.
var driverErrors []func(err error) (name string, broker bool)

// kafkaErrorName is the Kafka name of a broker error code ("" for 0 or an unknown code).
func kafkaErrorName(code int16) string {
	if k, ok := kerr.ErrorForCode(code).(*kerr.Error); ok {
		return k.Message
	}
	return ""
}
