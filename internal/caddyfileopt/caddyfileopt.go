// Package caddyfileopt holds the Caddyfile option parsers the modules of
// this repository share, so every directive reads its values the same way
// and reports mistakes in the same words. Parsers check syntax only (one
// argument, a number, a size, a duration); whether a value is allowed is
// the module's Validate's job, so each check lives in one place.
package caddyfileopt

import (
	"strconv"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/dustin/go-humanize"
)

// String reads the option's single argument.
func String(d *caddyfile.Dispenser) (string, error) {
	var v string
	if !d.AllArgs(&v) {
		return "", d.ArgErr()
	}
	return v, nil
}

// Strings reads the option's arguments, at least one.
func Strings(d *caddyfile.Dispenser) ([]string, error) {
	v := d.RemainingArgs()
	if len(v) == 0 {
		return nil, d.ArgErr()
	}
	return v, nil
}

// Int reads a single integer argument.
func Int(d *caddyfile.Dispenser) (int, error) {
	name := d.Val()
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, d.Errf("%s must be an integer, got %q", name, v)
	}
	return n, nil
}

// PositiveInt reads a single integer argument of at least 1. In JSON an
// unset number is 0, so a 0 in the Caddyfile could not be told from "use
// the default": it is refused here.
func PositiveInt(d *caddyfile.Dispenser) (int, error) {
	name := d.Val()
	n, err := Int(d)
	if err == nil && n < 1 {
		return 0, d.Errf("%s must be a positive integer, got %d", name, n)
	}
	return n, err
}

// Float reads a single number argument.
func Float(d *caddyfile.Dispenser) (float64, error) {
	name := d.Val()
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, d.Errf("%s must be a number, got %q", name, v)
	}
	return f, nil
}

// Size reads a byte size such as 64KiB or 1MB.
func Size(d *caddyfile.Dispenser) (int64, error) {
	name := d.Val()
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	n, err := humanize.ParseBytes(v)
	if err != nil {
		return 0, d.Errf("%s %q: %v", name, v, err)
	}
	return int64(n), nil
}

// Duration reads a Caddy duration such as 30s or 1d.
func Duration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	v, err := String(d)
	if err != nil {
		return 0, err
	}
	dur, err := caddy.ParseDuration(v)
	if err != nil {
		return 0, d.Errf("%s %q: %v", name, v, err)
	}
	return caddy.Duration(dur), nil
}

// NoArgs checks that a block option has no arguments on its own line.
func NoArgs(d *caddyfile.Dispenser) error {
	if d.NextArg() {
		return d.ArgErr()
	}
	return nil
}

// PositiveDuration reads a duration of more than zero. As with
// PositiveInt, a 0 could not be told from "use the default" once in JSON,
// and a negative one is never meant: both are refused here.
func PositiveDuration(d *caddyfile.Dispenser) (caddy.Duration, error) {
	name := d.Val()
	v, err := Duration(d)
	if err == nil && v <= 0 {
		return 0, d.Errf("%s must be positive, got %s", name, time.Duration(v))
	}
	return v, err
}

// Args reads between minArgs and maxArgs arguments, for options whose
// arguments have fixed places (such as an address and an optional name).
func Args(d *caddyfile.Dispenser, minArgs, maxArgs int) ([]string, error) {
	name := d.Val()
	v := d.RemainingArgs()
	if len(v) < minArgs || len(v) > maxArgs {
		return nil, d.Errf("%s takes %d to %d arguments, got %d", name, minArgs, maxArgs, len(v))
	}
	return v, nil
}

// NoBlock checks that option name, whose arguments were just read, is not
// followed by a block: left alone, the block's lines would be read as
// options of the enclosing block.
func NoBlock(d *caddyfile.Dispenser, name string) error {
	if d.NextBlock(d.Nesting()) {
		return d.Errf("%s takes no block", name)
	}
	return nil
}

// Once refuses an option given a second time in the same block, where a
// later line would otherwise silently replace an earlier one. seen holds
// the options read so far; the current token is the option's name.
func Once(d *caddyfile.Dispenser, seen map[string]bool) error {
	name := d.Val()
	if seen[name] {
		return d.Errf("%s already specified", name)
	}
	seen[name] = true
	return nil
}
