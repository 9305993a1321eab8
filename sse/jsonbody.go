package sse

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"strconv"
	"strings"
	"unicode"
)

// Request bodies are read whole (the guard caps them at maxBody), then
// held to one JSON object: nothing after it, and no key twice. A key given
// twice is how one party's check and another's use of a body can disagree
// (encoding/json keeps the last, and matches keys without regard to case),
// so it is refused however it is spelled.

// readBody reads a request body, mapping a body over maxBody to 413.
func readBody(r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return nil, errorf(http.StatusRequestEntityTooLarge, "request body too large: at most "+strconv.FormatInt(tooBig.Limit, 10)+" bytes")
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, errorf(http.StatusRequestTimeout, "the request body did not arrive in time")
	case err != nil:
		return nil, errorf(http.StatusBadRequest, "the request body could not be read: "+err.Error())
	}
	return body, nil
}

// jsonContentType reports whether r says its body is JSON.
func jsonContentType(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// decodeObject decodes body, one JSON object, into v. what names the body
// in errors ("the request body", "webhook body"). With only nil, a field v
// does not have is refused too, and so is any key given twice; else only
// the keys in only, folded (see foldKey), may not repeat (those v has: the
// others are ignored, whatever they hold).
func decodeObject(body []byte, v any, what string, only map[string]bool) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return errorf(http.StatusBadRequest, what+" is empty: send a JSON object")
	}
	key, err := repeatedKey(body, only)
	switch {
	case err != nil:
		return errorf(http.StatusBadRequest, what+" is not the JSON object expected: "+strings.TrimPrefix(err.Error(), "json: "))
	case key != "":
		return errorf(http.StatusBadRequest, what+" gives the key "+strconv.Quote(key)+" more than once")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if only == nil {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, what+" is not the JSON object expected: "+strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, extra := dec.Token(); !errors.Is(extra, io.EOF) {
		return errorf(http.StatusBadRequest, what+" must hold one JSON object and nothing after it")
	}
	return nil
}

var errNotObject = errors.New("not a JSON object")

// foldKey maps key to one spelling per class of keys encoding/json takes
// for the same field: each rune becomes the least of its Unicode simple
// case folding orbit, so "s", "S" and "ſ" (U+017F), or "k", "K" and the
// Kelvin sign, fold alike.
func foldKey(key string) string {
	var b strings.Builder
	for _, r := range key {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// repeatedKey returns the first top-level key of the object in body that
// repeats an earlier one, compared without regard to case ("" when none).
// A non-nil only limits it to the keys it holds, folded (see foldKey).
func repeatedKey(body []byte, only map[string]bool) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	t, err := dec.Token()
	if err != nil {
		return "", err
	}
	if d, ok := t.(json.Delim); !ok || d != '{' {
		return "", errNotObject
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", err
		}
		key, _ := t.(string)
		folded := foldKey(key)
		if seen[folded] && (only == nil || only[folded]) {
			return key, nil
		}
		seen[folded] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return "", err
		}
	}
	return "", nil
}
