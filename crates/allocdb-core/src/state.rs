//! Resource and lease states, with their stable stored numbers.

/// The state of a resource.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum ResourceState {
    /// Free to reserve.
    Available = 1,
    /// Held by a reserved lease.
    Reserved = 2,
    /// Held by an active lease.
    Active = 3,
    /// Held by a revoking lease: authority withdrawn, not yet reclaimed.
    Revoking = 4,
}

impl ResourceState {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceState::Available => "available",
            ResourceState::Reserved => "reserved",
            ResourceState::Active => "active",
            ResourceState::Revoking => "revoking",
        }
    }

    /// The state with stored number `value`, if any.
    pub fn from_u8(value: u8) -> Option<ResourceState> {
        match value {
            1 => Some(ResourceState::Available),
            2 => Some(ResourceState::Reserved),
            3 => Some(ResourceState::Active),
            4 => Some(ResourceState::Revoking),
            _ => None,
        }
    }

    /// Decodes a number the kernel itself stored; anything else is a broken invariant.
    pub(crate) fn from_stored(value: u8) -> ResourceState {
        match ResourceState::from_u8(value) {
            Some(state) => state,
            None => panic!("stored resource state {value} is not a state"),
        }
    }
}

/// The state of a lease. `Reserved`, `Active` and `Revoking` are live; the rest are terminal.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum LeaseState {
    /// Holding its resources until its deadline, unless activated or released.
    Reserved = 1,
    /// Holding its resources with no deadline.
    Active = 2,
    /// Authority withdrawn by an operator; resources still unavailable until reclaimed.
    Revoking = 3,
    /// Given back by its holder.
    Released = 4,
    /// Its deadline passed while reserved.
    Expired = 5,
    /// Reclaimed by an operator after a revoke.
    Revoked = 6,
}

impl LeaseState {
    /// The stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseState::Reserved => "reserved",
            LeaseState::Active => "active",
            LeaseState::Revoking => "revoking",
            LeaseState::Released => "released",
            LeaseState::Expired => "expired",
            LeaseState::Revoked => "revoked",
        }
    }

    /// The state with stored number `value`, if any.
    pub fn from_u8(value: u8) -> Option<LeaseState> {
        match value {
            1 => Some(LeaseState::Reserved),
            2 => Some(LeaseState::Active),
            3 => Some(LeaseState::Revoking),
            4 => Some(LeaseState::Released),
            5 => Some(LeaseState::Expired),
            6 => Some(LeaseState::Revoked),
            _ => None,
        }
    }

    pub(crate) fn from_stored(value: u8) -> LeaseState {
        match LeaseState::from_u8(value) {
            Some(state) => state,
            None => panic!("stored lease state {value} is not a state"),
        }
    }

    /// Whether the lease still holds its resources.
    pub fn is_live(self) -> bool {
        matches!(self, LeaseState::Reserved | LeaseState::Active | LeaseState::Revoking)
    }

    /// The resource state a live lease puts its members in.
    pub(crate) fn member_state(self) -> Option<ResourceState> {
        match self {
            LeaseState::Reserved => Some(ResourceState::Reserved),
            LeaseState::Active => Some(ResourceState::Active),
            LeaseState::Revoking => Some(ResourceState::Revoking),
            LeaseState::Released | LeaseState::Expired | LeaseState::Revoked => None,
        }
    }
}
