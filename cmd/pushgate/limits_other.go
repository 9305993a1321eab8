//go:build !unix

package main

import "errors"

func raiseFileLimit() (uint64, error) { return 0, errors.New("no open-file limit on this system") }
