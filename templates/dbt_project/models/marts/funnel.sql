-- The page_view -> add_to_cart -> checkout -> purchase funnel per day (UTC), counted in sessions:
-- each step counts the sessions that reached it after the previous step (see int_sessions), so
-- every step is a subset of the one before and the rates lie between 0 and 1. Sessions belong to
-- the day they started.

with sessions as (

    select * from {{ ref('int_sessions') }}

),

step_counts as (

    select
        session_date,
        count(*) as sessions,
        count(page_viewed_at) as page_view_sessions,
        count(added_to_cart_at) as add_to_cart_sessions,
        count(checked_out_at) as checkout_sessions,
        count(purchased_at) as purchase_sessions

    from sessions
    group by session_date

),

funnel as (

    select
        session_date,
        sessions,
        page_view_sessions,
        add_to_cart_sessions,
        checkout_sessions,
        purchase_sessions,
        {{ safe_divide('add_to_cart_sessions', 'page_view_sessions') }} as view_to_cart_rate,
        {{ safe_divide('checkout_sessions', 'add_to_cart_sessions') }} as cart_to_checkout_rate,
        {{ safe_divide('purchase_sessions', 'checkout_sessions') }} as checkout_to_purchase_rate,
        {{ safe_divide('purchase_sessions', 'add_to_cart_sessions') }} as cart_to_purchase_rate,
        {{ safe_divide('purchase_sessions', 'page_view_sessions') }} as view_to_purchase_rate

    from step_counts

)

select * from funnel
