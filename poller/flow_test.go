package poller_test

import (
	"testing"

	"github.com/pushgate/pushgate/poller"
)

func TestFlowOrder(t *testing.T) {
	for _, tc := range []struct {
		cur, next string
		want      int // sign of FlowOrder
		finished  bool
	}{
		// Unfinished statuses come in the order they arrive.
		{poller.StatusUnknown, poller.StatusIDValidationFinished, 0, false},
		{poller.StatusFaceValidationFinished, poller.StatusPostProcessingFinished, 0, false},
		{poller.StatusIDValidationFinished, poller.StatusGovernmentValidationFinished, 0, false},
		{poller.StatusFaceValidationFinished, poller.StatusIDValidationFinished, 0, false},
		{"A_NEW_STATUS", poller.StatusUnknown, 0, false},
		// Finishing, and deciding the review, go forward.
		{poller.StatusFaceValidationFinished, poller.StatusFinished, 1, true},
		{"A_NEW_STATUS", poller.StatusFinished, 1, true},
		{poller.StatusFinished, poller.StatusManualReviewApproved, 1, true},
		{poller.StatusManualReviewApproved, poller.StatusManualReviewRejected, 0, true},
		// A finished flow never moves back, nor does an unknown status reopen it.
		{poller.StatusManualReviewRejected, poller.StatusFinished, -1, true},
		{poller.StatusFinished, poller.StatusPostProcessingFinished, -1, false},
		{poller.StatusFinished, "A_NEW_STATUS", -1, false},
	} {
		got := poller.FlowOrder(tc.cur, tc.next)
		if (got > 0) != (tc.want > 0) || (got < 0) != (tc.want < 0) {
			t.Errorf("FlowOrder(%s, %s) = %d, want the sign of %d", tc.cur, tc.next, got, tc.want)
		}
		if f := (poller.Update{Status: tc.next}).Finished(); f != tc.finished {
			t.Errorf("Update{%s}.Finished() = %v, want %v", tc.next, f, tc.finished)
		}
	}
}
