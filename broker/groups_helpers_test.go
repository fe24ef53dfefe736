package broker_test

import (
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
)

func quietLogger() *slog.Logger {
	if os.Getenv("KCHAOS_DEBUG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// scrapeMetric returns the value of the first sample whose name and labels start with
// series, or 0 when absent.
func scrapeMetric(t *testing.T, addr, series string) float64 {
	t.Helper()
	text := scrapeAll(t, addr)
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, series+" ") || strings.HasPrefix(line, series+"{") && strings.HasPrefix(line, series) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

func scrapeAll(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
