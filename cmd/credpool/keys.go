// keys.go reads the pool's keys from the file or the environment variable
// named by the --keys-file and --keys-env flags, never from the command line.

package main

import (
	"flag"
	"fmt"

	"github.com/credpool/credpool"
)

// defaultKeysEnv is the environment variable read for keys by default.
const defaultKeysEnv = "CREDPOOL_KEYS"

// keySource is the --keys-file and --keys-env flags of a command.
type keySource struct {
	file string
	env  string
}

// register adds the flags to fs.
func (k *keySource) register(fs *flag.FlagSet) {
	fs.StringVar(&k.file, "keys-file", "", "read the keys from this `file`: one per line or comma-separated, # comments")
	fs.StringVar(&k.env, "keys-env", defaultKeysEnv, "read the keys from this environment `variable`: one per line or comma-separated")
}

// load reads the keys. Naming both sources is a usage error. Errors name the
// file or variable, never a key.
func (k *keySource) load(fs *flag.FlagSet) ([]string, error) {
	if k.file != "" {
		if isSet(fs, "keys-env") {
			return nil, usagef("--keys-file and --keys-env are exclusive")
		}
		keys, err := credpool.KeysFromFile(k.file)
		if err != nil {
			return nil, fmt.Errorf("%w (or read the keys from an environment variable with --keys-env)", err)
		}
		return keys, nil
	}
	if k.env == "" {
		return nil, usagef("--keys-env is empty")
	}
	keys, err := credpool.KeysFromEnv(k.env)
	if err != nil {
		return nil, fmt.Errorf("%w (or read the keys from a file with --keys-file)", err)
	}
	return keys, nil
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
