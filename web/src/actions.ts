// Actions shared by the views: filtering by a clicked value, selecting an
// entry, switching views. The App component installs the implementations.
export interface Actions {
  /** Adds a clause (`field == value`) to the applied query and applies it. */
  filter(clause: string): void;
  select(id: string): void;
  view(name: string): void;
}

export const actions: Actions = {
  filter: () => {},
  select: () => {},
  view: () => {},
};
