"""From a Docker Compose file to a netreconcile spec (`netreconcile import`).

`interpolate` (Compose's `${VAR}` forms and `.env` files) and `translate` (Compose's
networking keys to spec keys, and a note for everything else) are pure; `pools` chooses
subnets from Docker's default pools (pure); `reader` reads the Compose and env files;
`importer` runs them and checks the result with the spec loader.
"""
