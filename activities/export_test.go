package activities

import "go.temporal.io/sdk/temporal"

type temporalApplicationError = temporal.ApplicationError
