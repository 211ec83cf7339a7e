package store

// Translate exposes error translation to the black-box tests, which provoke
// constraint violations with raw bun statements.
func Translate(err error, table string) error { return translate(err, table, opWrite, "test") }

// TranslateDelete is Translate for a failed delete.
func TranslateDelete(err error, table string) error { return translate(err, table, opDelete, "test") }
