/**
 * What every command returns: its `--json` document, and what its stdout
 * lines are made from. `counts` sums it up, `items` has one row per thing
 * the command handled (an image, a file, an archive); a command adds its
 * own fields (where it wrote, which registry) beside them.
 */
export interface CommandResult<Item, Counts extends Record<string, number>> {
  counts: Counts
  items: Item[]
}
