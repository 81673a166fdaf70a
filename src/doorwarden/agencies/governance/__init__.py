"""Community control over surveillance: municipal approvals, subsidised-camera
programmes, and the instance-wide policy operators set."""
