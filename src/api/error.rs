//! ApiError: every failure a client sees, rendered as a Kubernetes metav1.Status body.
