package relay

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// boltStore keeps a localQueue in a bbolt file: every change is committed
// (and synced to disk) before the queue takes it, so what Add took
// survives a restart or a kill -9.
type boltStore struct {
	db *bolt.DB
}

// boltFile is the file a relay directory holds.
const boltFile = "relay.db"

// openBolt opens (or creates) the store in dir. Only one process may hold
// it: another waits up to a second, then fails.
func openBolt(dir string) (*boltStore, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("relay: the relay directory: %w", err)
	}
	db, err := bolt.Open(filepath.Join(dir, boltFile), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("relay: opening %s (is another pushgate using -relay-dir %s?): %w", filepath.Join(dir, boltFile), dir, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range []string{bucketQueued, bucketFailed} {
			if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("relay: preparing %s: %w", db.Path(), err)
	}
	return &boltStore{db: db}, nil
}

func (s *boltStore) load() (queued, failed []item, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		for _, b := range []struct {
			name string
			into *[]item
		}{{bucketQueued, &queued}, {bucketFailed, &failed}} {
			err := tx.Bucket([]byte(b.name)).ForEach(func(k, v []byte) error {
				var d Delivery
				if err := json.Unmarshal(v, &d); err != nil {
					return fmt.Errorf("relay: %s entry %x: %w", b.name, k, err)
				}
				*b.into = append(*b.into, item{binary.BigEndian.Uint64(k), d})
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return queued, failed, err
}

func (s *boltStore) apply(ops []op) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, o := range ops {
			b := tx.Bucket([]byte(o.bucket))
			k := binary.BigEndian.AppendUint64(nil, o.key)
			if o.d == nil {
				if err := b.Delete(k); err != nil {
					return err
				}
				continue
			}
			v, err := json.Marshal(o.d)
			if err != nil {
				return err
			}
			if err := b.Put(k, v); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *boltStore) close() error { return s.db.Close() }
