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
		// The checks that need the first ID check come in no fixed order.
		{poller.StatusFaceValidationFinished, poller.StatusPostProcessingFinished, 0, false},
		{poller.StatusGovernmentValidationFinished, poller.StatusIDValidationFinishedSecondID, 0, false},
		{poller.StatusPostProcessingFinished, poller.StatusFaceValidationFinished, 0, false},
		// Starting, and the first ID check, go forward; nothing goes back to them.
		{poller.StatusUnknown, poller.StatusIDValidationFinished, 1, false},
		{poller.StatusIDValidationFinished, poller.StatusGovernmentValidationFinished, 1, false},
		{poller.StatusFaceValidationFinished, poller.StatusIDValidationFinished, -1, false},
		{poller.StatusIDValidationFinished, poller.StatusUnknown, -1, false},
		// A status the upstream does not document comes after UNKNOWN, in
		// no order with the checks, and before the end of the flow.
		{"A_NEW_STATUS", poller.StatusUnknown, -1, false},
		{poller.StatusUnknown, "A_NEW_STATUS", 1, false},
		{"A_NEW_STATUS", poller.StatusIDValidationFinished, 0, false},
		{poller.StatusFaceValidationFinished, "A_NEW_STATUS", 0, false},
		{"A_NEW_STATUS", "ANOTHER_NEW_STATUS", 0, false},
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

func TestDocumented(t *testing.T) {
	for status, want := range map[string]bool{
		poller.StatusUnknown: true, poller.StatusFaceValidationFinished: true, poller.StatusManualReviewRejected: true,
		poller.StatusExpired: true, "A_NEW_STATUS": false, "": false, "expired": false,
	} {
		if got := poller.Documented(status); got != want {
			t.Errorf("Documented(%q) = %v, want %v", status, got, want)
		}
	}
}
