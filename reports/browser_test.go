package reports

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/kchaos/kchaos/internal/testkit"
)

// chromiumPath finds a Chromium or Chrome binary, or "".
func chromiumPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestReportInChromium opens report.html from disk in headless Chromium, offline: the page
// must load, every image must decode (naturalWidth > 0) and nothing may be logged as an
// error. .ci/run installs Debian's chromium so this runs in CI.
func TestReportInChromium(t *testing.T) {
	bin := chromiumPath()
	if bin == "" {
		testkit.Need(t, "chromium on PATH (apt-get install chromium; .ci/run installs it)", errors.New("not found"))
	}
	dir, run := generated(t)
	page, err := filepath.Abs(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser for the life of ctx
		t.Fatalf("start chromium: %v", err)
	}
	cctx, stopConsole := context.WithCancel(ctx)
	messages := chromedp.Console(cctx)
	var problems []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			if m.Type == chromedp.ConsoleError || m.Type == chromedp.ConsoleWarning || m.IsException() {
				problems = append(problems, m.String())
			}
		}
	}()

	type img struct {
		Complete bool `json:"complete"`
		Width    int  `json:"w"`
		Height   int  `json:"h"`
	}
	tctx, cancelT := context.WithTimeout(ctx, 45*time.Second)
	defer cancelT()
	if err := chromedp.Do(tctx, chromedp.Navigate("file://"+page), chromedp.WaitReady("body")); err != nil {
		t.Fatalf("chromium: load %s: %v", page, err)
	}
	if _, err := chromedp.Run(tctx, chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`,
		chromedp.WithPollingTimeout(20*time.Second))); err != nil {
		t.Fatalf("chromium: images did not finish loading: %v", err)
	}
	imgs, err := chromedp.Run(tctx, chromedp.Evaluate[[]img](`Array.from(document.images).map(i => ({complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))`))
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	title, err := chromedp.Run(tctx, chromedp.Title())
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if !strings.Contains(title, run.Summary.Workload) {
		t.Errorf("title %q lacks the workload name %q", title, run.Summary.Workload)
	}
	if want := 4 + 3*len(run.Configs); len(imgs) != want { // as in TestReportHTMLIsSelfContained
		t.Errorf("%d images in the page, want %d", len(imgs), want)
	}
	for i, im := range imgs {
		if !im.Complete || im.Width == 0 || im.Height == 0 {
			t.Errorf("image %d did not decode: %+v", i, im)
		}
	}
	// Let late messages arrive before reading them.
	time.Sleep(300 * time.Millisecond)
	stopConsole()
	<-done
	for _, p := range problems {
		t.Errorf("browser reported: %s", p)
	}
}
