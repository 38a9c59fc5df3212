-- One row per session, with the moments it passed each funnel step: page_view -> add_to_cart ->
-- checkout -> purchase. Steps count only in order: an add_to_cart before the session's first page
-- view does not make the session a funnel add_to_cart, nor a checkout before it a funnel checkout.

with events as (

    select * from {{ ref('stg_events') }}

),

session_bounds as (

    -- Grouping by user as well means a session_id shared by two users yields two rows, which the
    -- unique test on session_id then reports.
    select
        session_id,
        user_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as events_in_session

    from events
    group by session_id, user_id

),

first_page_views as (

    select
        session_id,
        min(occurred_at) as page_viewed_at

    from events
    where event_type = 'page_view'
    group by session_id

),

first_carts_after_view as (

    select
        events.session_id,
        min(events.occurred_at) as added_to_cart_at

    from events
    inner join first_page_views
        on events.session_id = first_page_views.session_id
        and events.occurred_at >= first_page_views.page_viewed_at
    where events.event_type = 'add_to_cart'
    group by events.session_id

),

first_checkouts_after_cart as (

    select
        events.session_id,
        min(events.occurred_at) as checked_out_at

    from events
    inner join first_carts_after_view
        on events.session_id = first_carts_after_view.session_id
        and events.occurred_at >= first_carts_after_view.added_to_cart_at
    where events.event_type = 'checkout'
    group by events.session_id

),

first_purchases_after_checkout as (

    select
        events.session_id,
        min(events.occurred_at) as purchased_at

    from events
    inner join first_checkouts_after_cart
        on events.session_id = first_checkouts_after_cart.session_id
        and events.occurred_at >= first_checkouts_after_cart.checked_out_at
    where events.event_type = 'purchase'
    group by events.session_id

),

sessions as (

    select
        session_bounds.session_id,
        session_bounds.user_id,
        session_bounds.started_at,
        session_bounds.ended_at,
        cast(session_bounds.started_at as date) as session_date,
        {{ dbt.datediff('session_bounds.started_at', 'session_bounds.ended_at', 'second') }} as duration_seconds,
        session_bounds.events_in_session,
        first_page_views.page_viewed_at,
        first_carts_after_view.added_to_cart_at,
        first_checkouts_after_cart.checked_out_at,
        first_purchases_after_checkout.purchased_at

    from session_bounds
    left join first_page_views
        on session_bounds.session_id = first_page_views.session_id
    left join first_carts_after_view
        on session_bounds.session_id = first_carts_after_view.session_id
    left join first_checkouts_after_cart
        on session_bounds.session_id = first_checkouts_after_cart.session_id
    left join first_purchases_after_checkout
        on session_bounds.session_id = first_purchases_after_checkout.session_id

)

select * from sessions
