package flow_test

import (
	"testing"

	"github.com/pushgate/pushgate/poller/flow"
)

func TestFlowOrder(t *testing.T) {
	for _, tc := range []struct {
		cur, next string
		want      int // sign of FlowOrder
		finished  bool
	}{
		// The checks that need the first ID check come in no fixed order.
		{flow.StatusFaceValidationFinished, flow.StatusPostProcessingFinished, 0, false},
		{flow.StatusGovernmentValidationFinished, flow.StatusIDValidationFinishedSecondID, 0, false},
		{flow.StatusPostProcessingFinished, flow.StatusFaceValidationFinished, 0, false},
		// Starting, and the first ID check, go forward; nothing goes back to them.
		{flow.StatusUnknown, flow.StatusIDValidationFinished, 1, false},
		{flow.StatusIDValidationFinished, flow.StatusGovernmentValidationFinished, 1, false},
		{flow.StatusFaceValidationFinished, flow.StatusIDValidationFinished, -1, false},
		{flow.StatusIDValidationFinished, flow.StatusUnknown, -1, false},
		// A status the upstream does not document comes after UNKNOWN, in
		// no order with the checks, and before the end of the flow.
		{"A_NEW_STATUS", flow.StatusUnknown, -1, false},
		{flow.StatusUnknown, "A_NEW_STATUS", 1, false},
		{"A_NEW_STATUS", flow.StatusIDValidationFinished, 0, false},
		{flow.StatusFaceValidationFinished, "A_NEW_STATUS", 0, false},
		{"A_NEW_STATUS", "ANOTHER_NEW_STATUS", 0, false},
		// Finishing, and deciding the review, go forward.
		{flow.StatusFaceValidationFinished, flow.StatusFinished, 1, true},
		{"A_NEW_STATUS", flow.StatusFinished, 1, true},
		{flow.StatusFinished, flow.StatusManualReviewApproved, 1, true},
		{flow.StatusManualReviewApproved, flow.StatusManualReviewRejected, 0, true},
		// A finished flow never moves back, nor does an unknown status reopen it.
		{flow.StatusManualReviewRejected, flow.StatusFinished, -1, true},
		{flow.StatusFinished, flow.StatusPostProcessingFinished, -1, false},
		{flow.StatusFinished, "A_NEW_STATUS", -1, false},
	} {
		got := flow.FlowOrder(tc.cur, tc.next)
		if (got > 0) != (tc.want > 0) || (got < 0) != (tc.want < 0) {
			t.Errorf("FlowOrder(%s, %s) = %d, want the sign of %d", tc.cur, tc.next, got, tc.want)
		}
		if f := (flow.Update{Status: tc.next}).Finished(); f != tc.finished {
			t.Errorf("Update{%s}.Finished() = %v, want %v", tc.next, f, tc.finished)
		}
	}
}

func TestDocumented(t *testing.T) {
	for status, want := range map[string]bool{
		flow.StatusUnknown: true, flow.StatusFaceValidationFinished: true, flow.StatusManualReviewRejected: true,
		flow.StatusExpired: true, "A_NEW_STATUS": false, "": false, "expired": false,
	} {
		if got := flow.Documented(status); got != want {
			t.Errorf("Documented(%q) = %v, want %v", status, got, want)
		}
	}
}
