//go:build linux

package bidi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
)

// Prefs is what every Firefox started by Launch has in its profile's
// user.js, before Options.Prefs.
var Prefs = map[string]any{
	// BiDi only, no CDP.
	"remote.active-protocols": 1,
	// Nothing that calls home: the machines the tests run on may have no
	// route out, and a test must not depend on one anyway.
	"app.update.enabled":                              false,
	"app.update.auto":                                 false,
	"app.normandy.enabled":                            false,
	"app.normandy.api_url":                            "",
	"app.shield.optoutstudies.enabled":                false,
	"messaging-system.rsexperimentloader.enabled":     false,
	"browser.backup.scheduled.enabled":                false,
	"toolkit.telemetry.enabled":                       false,
	"toolkit.telemetry.unified":                       false,
	"toolkit.telemetry.server":                        "",
	"datareporting.healthreport.uploadEnabled":        false,
	"datareporting.policy.dataSubmissionEnabled":      false,
	"network.captive-portal-service.enabled":          false,
	"network.connectivity-service.enabled":            false,
	"browser.safebrowsing.malware.enabled":            false,
	"browser.safebrowsing.phishing.enabled":           false,
	"browser.safebrowsing.downloads.enabled":          false,
	"browser.safebrowsing.blockedURIs.enabled":        false,
	"browser.safebrowsing.update.enabled":             false,
	"browser.safebrowsing.provider.mozilla.updateURL": "",
	"browser.safebrowsing.provider.google4.updateURL": "",
	"extensions.update.enabled":                       false,
	"extensions.getAddons.cache.enabled":              false,
	"extensions.blocklist.enabled":                    false,
	"services.settings.server":                        "data:,",
	"browser.region.update.enabled":                   false,
	"browser.region.network.url":                      "",
	"browser.search.update":                           false,
	"browser.newtabpage.enabled":                      false,
	"browser.startup.page":                            0,
	"browser.startup.homepage_override.mstone":        "ignore",
	"browser.shell.checkDefaultBrowser":               false,
	"browser.aboutwelcome.enabled":                    false,
	"datareporting.policy.firstRunURL":                "",
	"network.dns.disablePrefetch":                     true,
	"network.prefetch-next":                           false,
	"network.http.speculative-parallel-limit":         0,
}

// Options configure Launch.
type Options struct {
	// Path is the Firefox binary, /usr/bin/firefox-esr for instance.
	Path string
	// Prefs are more user.js preferences, overriding Prefs.
	Prefs map[string]any
	// Stderr, when set, receives Firefox's stderr after the line that
	// names the BiDi endpoint.
	Stderr io.Writer
	// StartTimeout bounds the wait for that line; 30s when zero.
	StartTimeout time.Duration
}

// Firefox is a headless Firefox with a fresh profile, and a BiDi session
// on it.
type Firefox struct {
	*Conn
	cmd     *exec.Cmd
	profile string
	exited  chan struct{}
}

// bidiListening is how Firefox announces its endpoint on stderr.
var bidiListening = regexp.MustCompile(`WebDriver BiDi listening on (ws://\S+)`)

// Launch starts Firefox headless on a fresh profile, with the remote agent
// on a port of its choosing, connects to it and starts a session that
// accepts the test site's certificates. Close ends it all.
func Launch(ctx context.Context, o Options) (*Firefox, error) {
	profile, err := os.MkdirTemp("", "bidi-firefox-*")
	if err != nil {
		return nil, err
	}
	f := &Firefox{profile: profile, exited: make(chan struct{})}
	if err := f.start(ctx, o); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (f *Firefox) start(ctx context.Context, o Options) error {
	if err := writeUserJS(f.profile, o.Prefs); err != nil {
		return err
	}
	f.cmd = exec.Command(o.Path, "--headless", "--no-remote", "--remote-debugging-port=0", "--profile", f.profile)
	// Its own process group, so that Close ends its content processes too;
	// killed if this process dies before it can (its children then notice
	// their parent is gone and exit).
	f.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := f.cmd.StderrPipe()
	if err != nil {
		return err
	}
	if err := f.cmd.Start(); err != nil {
		return fmt.Errorf("bidi: starting firefox: %w", err)
	}
	go func() { _ = f.cmd.Wait(); close(f.exited) }()
	endpoint, err := f.endpoint(stderr, o)
	if err != nil {
		return err
	}
	if f.Conn, err = Dial(ctx, endpoint+"/session"); err != nil {
		return err
	}
	return f.NewSession(ctx, true)
}

// endpoint reads stderr up to the line that names the BiDi endpoint, then
// passes the rest on to o.Stderr (or drops it) so Firefox never blocks on
// a full pipe. What came before that line is in the error when it never
// comes.
func (f *Firefox) endpoint(stderr io.Reader, o Options) (string, error) {
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	out := o.Stderr
	if out == nil {
		out = io.Discard
	}
	type result struct {
		url    string
		before []string
	}
	found := make(chan result, 1)
	go func() {
		lines := bufio.NewScanner(stderr)
		var r result
		for r.url == "" && lines.Scan() {
			if m := bidiListening.FindStringSubmatch(lines.Text()); m != nil {
				r.url = m[1]
			} else {
				r.before = append(r.before, lines.Text())
			}
		}
		found <- r
		for lines.Scan() {
			fmt.Fprintln(out, lines.Text())
		}
		// A line too long for the scanner ends it; the rest still drains.
		_, _ = io.Copy(out, stderr)
	}()
	select {
	case r := <-found:
		if r.url == "" {
			return "", fmt.Errorf("bidi: firefox exited without naming its BiDi endpoint: %s", strings.Join(r.before, "\n"))
		}
		return r.url, nil
	case <-time.After(timeout):
		return "", fmt.Errorf("bidi: firefox named no BiDi endpoint within %s", timeout)
	}
}

// writeUserJS writes Prefs and extra as the profile's user.js, in a
// stable order.
func writeUserJS(profile string, extra map[string]any) error {
	all := map[string]any{}
	for k, v := range Prefs {
		all[k] = v
	}
	for k, v := range extra {
		all[k] = v
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", k, prefValue(all[k]))
	}
	return os.WriteFile(filepath.Join(profile, "user.js"), []byte(b.String()), 0o644)
}

// prefValue renders a preference value as user.js wants it.
func prefValue(v any) string {
	if s, ok := v.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprint(v)
}

// PID is the process id of Firefox's main process.
func (f *Firefox) PID() int { return f.cmd.Process.Pid }

// Close ends the session, kills Firefox and its child processes, and
// removes the profile.
func (f *Firefox) Close() {
	if f.Conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = f.EndSession(ctx)
		cancel()
		_ = f.Conn.Close()
	}
	if f.cmd != nil && f.cmd.Process != nil {
		_ = syscall.Kill(-f.cmd.Process.Pid, syscall.SIGKILL)
		<-f.exited
	}
	// Content processes killed with the group may still be exiting and
	// closing files in the profile for a moment.
	for i := 0; i < 20 && os.RemoveAll(f.profile) != nil; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}
