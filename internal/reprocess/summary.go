package reprocess

import "github.com/regscribe/regscribe/internal/queue"

// Counts summarise a run. Every manifest is counted in exactly one of
// NotPhotos, AlreadyDescribed, FailedBefore, Errors, ToQueue, Queued and
// AlreadyQueued (an Unchanged tag is counted in Tags and Unchanged only); every Queued photo in exactly one of Described, Skipped,
// Failed and Pending.
type Counts struct {
	// Tags listed (matching the glob; referrers fallback tags are never listed).
	Tags int `json:"tags"`
	// Manifests is the number of distinct (repository, digest).
	Manifests int `json:"manifests"`
	// NotPhotos have no image layer.
	NotPhotos int `json:"notPhotos"`
	// AlreadyDescribed have a description by the configured model.
	AlreadyDescribed int `json:"alreadyDescribed"`
	// FailedBefore were given up by an earlier job and not queued again.
	FailedBefore int `json:"failedBefore"`
	// Unchanged are tags whose manifest was not fetched: settled before
	// and still at the same digest (PlanOptions.Settled).
	Unchanged int `json:"unchanged,omitempty"`
	// Gone are tags deleted while the plan was made.
	Gone int `json:"gone"`
	// Errors are manifests or repositories that could not be read.
	Errors int `json:"errors"`
	// ToQueue are photos planned but not queued (a dry run, or publishing failed).
	ToQueue int `json:"toQueue"`
	// Queued photos got a job; AlreadyQueued ones had a job queued already.
	Queued        int `json:"queued"`
	AlreadyQueued int `json:"alreadyQueued"`
	// Outcomes of the queued photos; Pending have none yet.
	Described int `json:"described"`
	Skipped   int `json:"skipped"`
	Failed    int `json:"failed"`
	Pending   int `json:"pending"`
	// ModelCalls made for the queued photos.
	ModelCalls int `json:"modelCalls"`
	// Indexed are the descriptions found already in the registry that the
	// description stream lacked, put on it now (one per manifest and
	// describer), whatever the manifest's status.
	Indexed int `json:"indexed"`
}

// Summarize counts items.
func Summarize(items []Item) Counts {
	var c Counts
	for _, it := range items {
		c.Tags += len(it.Tags)
		c.Indexed += it.Indexed
		if it.Digest != "" && it.Status != Unchanged {
			c.Manifests++
		}
		switch it.Status {
		case Unchanged:
			c.Unchanged++
		case NotPhoto:
			c.NotPhotos++
		case AlreadyDescribed:
			c.AlreadyDescribed++
		case FailedBefore:
			c.FailedBefore++
		case Gone:
			c.Gone++
		case Unchecked:
			c.Errors++
		case ToQueue:
			c.ToQueue++
		case AlreadyQueued:
			c.AlreadyQueued++
		case Queued:
			c.Queued++
			c.ModelCalls += it.ModelCalls
			switch it.Outcome {
			case queue.Described:
				c.Described++
			case queue.Skipped:
				c.Skipped++
			case queue.Failed:
				c.Failed++
			default:
				c.Pending++
			}
		}
	}
	return c
}
