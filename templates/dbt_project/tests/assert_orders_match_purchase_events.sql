-- Orders and purchase events pair up one to one: every order comes from exactly one purchase event
-- of the same user and session, placed 0 to 10 minutes after it, and every purchase event has
-- exactly one order. Returns each offending order or purchase event with what is wrong with it.

with orders as (

    select order_id, user_id, session_id, purchase_event_id, ordered_at
    from {{ ref('stg_orders') }}

),

purchase_events as (

    select event_id, user_id, session_id, occurred_at
    from {{ ref('stg_events') }}
    where event_type = 'purchase'

),

pairs as (

    -- An order pointing at a missing or non-purchase event finds no partner here, and neither does
    -- a purchase event without an order.
    select
        orders.order_id,
        orders.purchase_event_id as order_purchase_event_id,
        purchase_events.event_id,
        orders.user_id as order_user_id,
        purchase_events.user_id as event_user_id,
        orders.session_id as order_session_id,
        purchase_events.session_id as event_session_id,
        orders.ordered_at,
        purchase_events.occurred_at as purchased_at,
        count(orders.order_id) over (partition by purchase_events.event_id) as orders_of_event

    from orders
    full outer join purchase_events
        on orders.purchase_event_id = purchase_events.event_id

),

checked as (

    select
        case
            when event_id is null then 'order without a purchase event'
            when order_id is null then 'purchase event without an order'
            when orders_of_event > 1 then 'purchase event with several orders'
            when order_user_id is distinct from event_user_id then 'order of another user than its purchase event'
            when order_session_id is distinct from event_session_id then 'order of another session than its purchase event'
            when ordered_at < purchased_at
                or ordered_at > {{ dbt.dateadd('minute', 10, 'purchased_at') }}
                then 'order not placed within 10 minutes after its purchase event'
        end as problem,
        pairs.*

    from pairs

)

select *
from checked
where problem is not null
