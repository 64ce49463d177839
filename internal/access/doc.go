// Package access manages what staff may do in AWS, starting from the
// reviewed IAM policy templates of the staff roles in blueprints/staff-roles.
package access
