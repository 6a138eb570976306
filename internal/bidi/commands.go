//go:build linux

package bidi

import (
	"context"
	"encoding/json"
	"fmt"
)

// The commands the browser tests use, each a thin wrapper of one BiDi
// command.

// NewSession starts the session on a connection to <endpoint>/session.
// acceptInsecureCerts lets pages load from a site whose CA the browser
// does not know (the tests' Caddy signs with its internal CA).
func (c *Conn) NewSession(ctx context.Context, acceptInsecureCerts bool) error {
	params := map[string]any{
		"capabilities": map[string]any{
			"alwaysMatch": map[string]any{"acceptInsecureCerts": acceptInsecureCerts},
		},
	}
	return c.Call(ctx, "session.new", params, nil)
}

// EndSession ends the session; the browser stays up.
func (c *Conn) EndSession(ctx context.Context) error {
	return c.Call(ctx, "session.end", nil, nil)
}

// CreateTab opens a tab and returns its browsing context id.
func (c *Conn) CreateTab(ctx context.Context) (string, error) {
	var r struct {
		Context string `json:"context"`
	}
	err := c.Call(ctx, "browsingContext.create", map[string]any{"type": "tab"}, &r)
	return r.Context, err
}

// CloseTab closes a tab, running its pagehide handlers.
func (c *Conn) CloseTab(ctx context.Context, tab string) error {
	return c.Call(ctx, "browsingContext.close", map[string]any{"context": tab}, nil)
}

// Navigate loads url in tab and returns once the page has loaded.
func (c *Conn) Navigate(ctx context.Context, tab, url string) error {
	return c.Call(ctx, "browsingContext.navigate", map[string]any{"context": tab, "url": url, "wait": "complete"}, nil)
}

// Reload reloads tab and returns once the page has loaded again.
func (c *Conn) Reload(ctx context.Context, tab string) error {
	return c.Call(ctx, "browsingContext.reload", map[string]any{"context": tab, "wait": "complete"}, nil)
}

// AddPreloadScript has source run in every new document of tab before the
// document's own scripts, also after reloads. source is a script, not a
// function: it is wrapped in one as the protocol wants.
func (c *Conn) AddPreloadScript(ctx context.Context, tab, source string) error {
	params := map[string]any{
		"functionDeclaration": "() => {\n" + source + "\n}",
		"contexts":            []string{tab},
	}
	return c.Call(ctx, "script.addPreloadScript", params, nil)
}

// Evaluate runs a JavaScript expression in tab, awaits it if it is a
// promise, and returns its value decoded by Decode. A thrown exception is
// an *Exception.
func (c *Conn) Evaluate(ctx context.Context, tab, expression string) (any, error) {
	params := map[string]any{
		"expression":      expression,
		"target":          map[string]any{"context": tab},
		"awaitPromise":    true,
		"resultOwnership": "none",
	}
	var r struct {
		Type             string          `json:"type"` // "success" or "exception"
		Result           json.RawMessage `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	if err := c.Call(ctx, "script.evaluate", params, &r); err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		return nil, &Exception{Text: r.ExceptionDetails.Text}
	}
	return Decode(r.Result)
}

// Exception is a script that threw.
type Exception struct{ Text string }

func (e *Exception) Error() string { return fmt.Sprintf("bidi: script threw: %s", e.Text) }
