package simulator

// A score answer shaped like the upstream's; every section's status is the
// chosen outcome.

type scoreCheck struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Status string `json:"status"`
}

type scoreOverall struct {
	Value  string `json:"value"`
	Status string `json:"status"`
}

type scoreAnswer struct {
	IDValidation struct {
		PhotoSecurityAndQuality []scoreCheck `json:"photoSecurityAndQuality"`
		IDSpecific              []scoreCheck `json:"idSpecific"`
		AppliedRule             *string      `json:"appliedRule"` // always null
		Overall                 scoreOverall `json:"overall"`
	} `json:"idValidation"`
	Liveness struct {
		Overall scoreOverall `json:"overall"`
	} `json:"liveness"`
	FaceRecognition struct {
		ExistingUser bool         `json:"existingUser"`
		Overall      scoreOverall `json:"overall"`
	} `json:"faceRecognition"`
	IDOcrConfidence struct {
		OverallConfidence scoreOverall `json:"overallConfidence"`
	} `json:"idOcrConfidence"`
	Overall scoreOverall `json:"overall"`
}

// scoreValues are the numbers each outcome reports: id, liveness, face, OCR.
var scoreValues = map[string][4]string{
	OutcomeOK:   {"100.0", "95.0", "92.0", "99.0"},
	OutcomeWarn: {"70.0", "62.0", "66.0", "80.0"},
	OutcomeFail: {"10.0", "20.0", "15.0", "30.0"},
}

func scoreFor(outcome string) scoreAnswer {
	v, ok := scoreValues[outcome]
	if !ok {
		outcome, v = OutcomeOK, scoreValues[OutcomeOK]
	}
	tamper := "PASSED"
	if outcome == OutcomeFail {
		tamper = "FAILED"
	}
	var a scoreAnswer
	a.IDValidation.PhotoSecurityAndQuality = []scoreCheck{{"tamperCheck", tamper, outcome}}
	a.IDValidation.IDSpecific = []scoreCheck{{"documentClassification", v[0][:len(v[0])-2], outcome}}
	a.IDValidation.Overall = scoreOverall{v[0], outcome}
	a.Liveness.Overall = scoreOverall{v[1], outcome}
	a.FaceRecognition.Overall = scoreOverall{v[2], outcome}
	a.IDOcrConfidence.OverallConfidence = scoreOverall{v[3], outcome}
	a.Overall = scoreOverall{v[0], outcome}
	return a
}
