// Package sshtest starts a throwaway sshd on loopback for tests of the chaos controller's
// ssh driver. Tests that use it are skipped, with the reason, where sshd or ssh-keygen is
// missing.
package sshtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kchaos/kchaos/internal/testkit"
)

// SSHD is a throwaway sshd on a loopback port that accepts one throwaway key.
type SSHD struct {
	// Host is 127.0.0.1:PORT.
	Host string
	// Key is the client's private key file.
	Key string
	// KnownHosts lists the sshd's host key.
	KnownHosts string
}

// Start starts /usr/sbin/sshd as a child of the test (killed at its end), or skips the test
// saying why it cannot (testkit.Need: fails it where every test must run).
func Start(t testing.TB) *SSHD {
	t.Helper()
	const sshd = "/usr/sbin/sshd"
	_, err := os.Stat(sshd)
	testkit.Need(t, "sshd (install openssh-server)", err)
	_, err = exec.LookPath("ssh-keygen")
	testkit.Need(t, "ssh-keygen", err)
	if os.Geteuid() == 0 {
		// sshd's privilege separation directory, normally made by the service unit.
		testkit.Need(t, "/run/sshd", os.MkdirAll("/run/sshd", 0o755))
	}
	dir := t.TempDir()
	for _, k := range []string{"host_key", "client_key"} {
		if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, k)).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v: %s", err, out)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := ln.Addr().String()
	ln.Close()
	_, port, _ := net.SplitHostPort(host)
	hostPub, _ := os.ReadFile(filepath.Join(dir, "host_key.pub"))
	clientPub, _ := os.ReadFile(filepath.Join(dir, "client_key.pub"))
	d := &SSHD{Host: host, Key: filepath.Join(dir, "client_key"), KnownHosts: filepath.Join(dir, "known_hosts")}
	write := func(name, text string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("known_hosts", fmt.Sprintf("[127.0.0.1]:%s %s", port, hostPub))
	write("authorized_keys", string(clientPub))
	write("sshd_config", fmt.Sprintf(`Port %s
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
`, port, filepath.Join(dir, "host_key"), filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid")))
	cmd := exec.Command(sshd, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	logf, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	testkit.Need(t, "an sshd that starts", cmd.Start())
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", host, 200*time.Millisecond); err == nil {
			c.Close()
			return d
		}
		select {
		case <-exited:
			out, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			testkit.Need(t, "an sshd that starts", fmt.Errorf("it exited: %s", out))
		default:
		}
		if time.Now().After(deadline) {
			testkit.Need(t, "an sshd that listens", errors.New("not within 10s"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// User returns the name of the user the test runs as (the sshd accepts only it).
func User(t testing.TB) string {
	out, err := exec.Command("id", "-un").Output()
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out))
}
